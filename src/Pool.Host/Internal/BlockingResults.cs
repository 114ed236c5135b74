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

        // An Imap's own enumerator waits on this thread: no thread-pool thread is needed to wake it.
        private readonly IBlockingEnumerator<T>? _blocking = inner as IBlockingEnumerator<T>;

        public bool MoveNext()
        {
            if (_blocking is { } blocking)
            {
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
    [ThreadStatic]
    private static bool t_inBlockingCall;

    /// <summary>Whether the call being made on this thread is a blocking one (<see cref="Of{T}"/>): an Imap reads a long or
    /// lazy input on a thread of its own then, as its caller may hold a thread-pool thread (see ImapJob.Start).</summary>
    public static bool InBlockingCall => t_inBlockingCall;

    /// <summary>The blocking face of the async call <paramref name="call"/> makes, which it makes knowing it is blocking.</summary>
    public static IEnumerable<T> Of<T>(Func<IAsyncEnumerable<T>> call, CancellationToken cancellationToken)
    {
        t_inBlockingCall = true;
        try
        {
            return new BlockingResults<T>(call(), cancellationToken);
        }
        finally
        {
            t_inBlockingCall = false;
        }
    }

    public static IEnumerable<T> Blocking<T>(this IAsyncEnumerable<T> source, CancellationToken cancellationToken) =>
        new BlockingResults<T>(source, cancellationToken);
}
