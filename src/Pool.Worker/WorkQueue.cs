using System.Collections.Concurrent;

namespace Pool.Worker;

/// <summary>
/// The queue from the reader to the executor. One thread executes at a time, and takes items with
/// <see cref="TryTake"/> (see <see cref="WorkerRuntime"/>); when tasks may overlap, the executor has a thread of its
/// own and waits in <see cref="Take"/>/<see cref="TakeAsync"/>. One count per item, and one more for the end, so the
/// executor sees every item before it sees the end.
/// </summary>
internal sealed class WorkQueue : IDisposable
{
    private readonly ConcurrentQueue<WorkItem> _items = new();
    private readonly SemaphoreSlim _available = new(0);
    private Exception? _error;
    private int _completed;

    public bool IsEmpty => _items.IsEmpty;

    /// <summary>Reader thread: queues an item.</summary>
    public void Add(WorkItem item)
    {
        _items.Enqueue(item);
        _available.Release();
    }

    /// <summary>No more items; the executor ends after those queued (throwing <paramref name="error"/>, if any).</summary>
    public void Complete(Exception? error = null)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return;
        }

        _error = error;
        _available.Release();
    }

    /// <summary>Executor: the next item, waiting for it; null at the end.</summary>
    public WorkItem? Take()
    {
        _available.Wait();
        return Next();
    }

    /// <summary>Executor: the next item if one is queued, else null (also at the end); never waits.</summary>
    public WorkItem? TryTake() => _available.Wait(0) ? Next() : null;

    /// <summary>As <see cref="Take"/>, without blocking a thread (the concurrent executor).</summary>
    public async ValueTask<WorkItem?> TakeAsync()
    {
        await _available.WaitAsync().ConfigureAwait(false);
        return Next();
    }

    public void Dispose() => _available.Dispose();

    private WorkItem? Next()
    {
        if (_items.TryDequeue(out WorkItem? item))
        {
            return item;
        }

        return _error is { } error ? throw new InvalidOperationException($"The worker stopped: {error.Message}", error) : null;
    }
}
