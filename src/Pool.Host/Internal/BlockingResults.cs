using System.Collections;

namespace Pool.Internal;

/// <summary>
/// The blocking face of an <c>Imap</c> call's results: each <see cref="IEnumerator.MoveNext"/> blocks once on the
/// async enumerator's <c>MoveNextAsync</c>. Unlike <c>ToBlockingEnumerable</c> (an iterator, which is finished by
/// the first exception it lets through and then abandons the job), a failed task throws from <c>MoveNext</c> and
/// the next <c>MoveNext</c> goes on with the following results, exactly as the async enumerator and Python's
/// <c>imap</c> iterator do. Disposing the enumerator before the end abandons the call.
/// </summary>
internal sealed class BlockingResults<T>(IAsyncEnumerable<T> source, CancellationToken cancellationToken) : IEnumerable<T>
{
    public IEnumerator<T> GetEnumerator() => new Enumerator(source.GetAsyncEnumerator(cancellationToken));

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Enumerator(IAsyncEnumerator<T> inner) : IEnumerator<T>
    {
        public T Current => inner.Current;

        object? IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (inner is IBlockingEnumerator<T> blocking)
            {
                // An Imap's own enumerator waits on this thread: no thread-pool thread is needed to wake it.
                return blocking.MoveNext();
            }

            ValueTask<bool> next = inner.MoveNextAsync();
            return next.IsCompletedSuccessfully ? next.Result : next.AsTask().GetAwaiter().GetResult();
        }

        public void Reset() => throw new NotSupportedException("The results of an Imap call can be enumerated once, as a Python iterator can.");

        public void Dispose()
        {
            ValueTask disposed = inner.DisposeAsync();
            if (!disposed.IsCompletedSuccessfully)
            {
                disposed.AsTask().GetAwaiter().GetResult();
            }
        }
    }
}

/// <summary>An async enumerator that can also wait for its next item by blocking the calling thread.</summary>
internal interface IBlockingEnumerator<out T>
{
    bool MoveNext();
}

/// <summary>Turns an <c>Imap</c> call's async results into the blocking enumerable of the synchronous API.</summary>
internal static class BlockingResults
{
    public static IEnumerable<T> Blocking<T>(this IAsyncEnumerable<T> source, CancellationToken cancellationToken) =>
        new BlockingResults<T>(source, cancellationToken);
}
