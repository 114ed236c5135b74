namespace Pool.Internal;

/// <summary>
/// A synchronous input of <c>Imap</c> as the async sequence the job pulls from, read lazily, with its count when it is
/// known without enumerating it (an array, a collection: <see cref="Enumerable.TryGetNonEnumeratedCount{TSource}"/>),
/// for the progress reports' total.
/// </summary>
internal sealed class LazySequence<T>(IEnumerable<T> items) : IAsyncEnumerable<T>
{
    public long? Count { get; } = items.TryGetNonEnumeratedCount(out int count) ? count : null;

    public async IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        foreach (T item in items)
        {
            yield return item;
        }
    }
}
