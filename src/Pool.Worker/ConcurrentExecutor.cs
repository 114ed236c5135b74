using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// What lets one worker run several tasks of async functions at once (<c>MaxConcurrencyPerWorker</c> above
/// 1): a slot per task, the tasks running now for the <see cref="ProgressCell"/>, and the chunks not yet
/// fully reported. Outcomes are written under <see cref="ResultWriter.Sync"/>, since tasks complete on
/// thread-pool threads; each chunk still reports its tasks in order.
/// </summary>
/// <remarks>
/// The cell shows the oldest task still running, with its start time: the host blames that task if the
/// worker dies, and checks its deadline first. Tasks start in input order, so every task of its chunk before
/// it has finished, as when tasks run one at a time.
/// </remarks>
internal sealed class ConcurrentExecutor(int maxConcurrency, WorkerContext context, Action<int> chunkDone)
{
    private readonly SemaphoreSlim _slots = new(maxConcurrency, maxConcurrency);
    private readonly List<(int ChunkId, int Index, long StartedAt)> _running = new(maxConcurrency);
    private int _chunks;
    private TaskCompletionSource? _idle;
    private Exception? _fault;

    public ResultWriter Output => context.Output;

    /// <summary>The lock under which outcomes are written and this executor's state changes.</summary>
    public Lock Sync => context.Output.Sync;

    /// <summary>Waits for a free slot.</summary>
    public Task AcquireAsync() => _slots.WaitAsync();

    public void Release() => _slots.Release();

    /// <summary>A chunk starts: <see cref="WhenIdleAsync"/> waits for it to report all its tasks.</summary>
    public void ChunkStarted()
    {
        lock (Sync)
        {
            _chunks++;
        }
    }

    /// <summary>
    /// Every task of the chunk is reported, and the thread that wrote the last outcome is done with the
    /// <see cref="ResultWriter"/>: it calls this after leaving <see cref="Sync"/>, never under it.
    /// </summary>
    /// <remarks>
    /// Once no chunk is left, <see cref="WhenIdleAsync"/> completes and the executor may run a synchronous
    /// function, which writes its outcomes without the lock. Completing it under the lock let that function
    /// write while this thread was still flushing, which corrupted the stream to the host (the worker was then
    /// killed, or crashed, and replaced).
    /// </remarks>
    public void ChunkReported(int chunkId)
    {
        Debug.Assert(!Sync.IsHeldByCurrentThread, "A chunk is reported done after its last outcome is written and the lock is left.");
        chunkDone(chunkId);
        TaskCompletionSource? idle = null;
        lock (Sync)
        {
            if (--_chunks == 0)
            {
                idle = _idle;
                _idle = null;
            }
        }

        idle?.TrySetResult();
    }

    /// <summary>Under <see cref="Sync"/>: task <paramref name="index"/> of <paramref name="chunkId"/> starts now.</summary>
    public void Started(int chunkId, int index)
    {
        long now = Stopwatch.GetTimestamp();
        _running.Add((chunkId, index, now));
        if (_running.Count == 1)
        {
            context.Cell.Show(chunkId, index, now);
        }
    }

    /// <summary>Under <see cref="Sync"/>: the task ended; the cell moves on to the oldest one still running.</summary>
    public void Finished(int chunkId, int index)
    {
        int at = _running.FindIndex(r => r.ChunkId == chunkId && r.Index == index);
        if (at < 0)
        {
            return;
        }

        _running.RemoveAt(at);
        if (at > 0)
        {
            return;
        }

        if (_running.Count == 0)
        {
            context.Cell.Leave();
        }
        else
        {
            (int oldestChunk, int oldestIndex, long startedAt) = _running[0];
            context.Cell.Show(oldestChunk, oldestIndex, startedAt);
        }
    }

    /// <summary>
    /// Completes when no chunk is running and the thread that reported the last one is done writing: a
    /// synchronous function or the end of input waits for it, and then has the <see cref="ResultWriter"/> to itself.
    /// </summary>
    public Task WhenIdleAsync()
    {
        lock (Sync)
        {
            if (_fault is { } fault)
            {
                return Task.FromException(fault);
            }

            return _chunks == 0 ? Task.CompletedTask : (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Writing an outcome failed on a thread-pool thread (the pipe is gone): the executor loop throws it.</summary>
    public void Fail(Exception error)
    {
        TaskCompletionSource? idle;
        lock (Sync)
        {
            _fault ??= error;
            idle = _idle;
            _idle = null;
        }

        idle?.TrySetException(error);
    }

    /// <summary>Sends what is buffered, when the worker has nothing queued.</summary>
    public void Flush()
    {
        lock (Sync)
        {
            context.Output.Flush();
        }
    }
}
