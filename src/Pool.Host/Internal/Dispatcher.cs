using System.Collections.Concurrent;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The one loop that writes to workers. It takes chunks from jobs in turn (chunks of crashed workers
/// first) and hands each to the least loaded worker that has room, writing frames into that worker's
/// buffer; when it runs out of work or of room it flushes every buffer it wrote, so many small frames go
/// out in one write. It runs on its own thread and waits on one event that new jobs, new workers, and freed
/// room while work waits for it, set; it blocks at once, leaving the cores to the workers. A caller whose call
/// finds it idle sends its own chunks (<see cref="Submit"/>), and a worker with a deep window of tiny chunks wakes
/// it once it is down to half its window (<see cref="InFlightChunks.IsLow"/>), so it is woken once per refill rather
/// than once per task. (It used to spin briefly after a short wait: in a <c>Map</c> of chunk size 1 that spinning
/// took half the dispatcher's CPU, about a third of a core of two.)
/// </summary>
internal sealed class Dispatcher(PoolRuntime runtime)
{
    private readonly ConcurrentQueue<Job> _jobs = new();
    private readonly ConcurrentQueue<Chunk> _retries = new();
    private readonly ConcurrentQueue<(WorkerConnection Worker, CancelMessage Cancel)> _cancels = new();
    private readonly ConcurrentQueue<int> _unbinds = new();
    private readonly ConcurrentQueue<Job> _stoppedJobs = new();
    /// <summary>A worker's buffer is written out as soon as it holds this much (the pipe's buffer holds twice it).</summary>
    private const int EagerFlushBytes = 1 << 20;

    private readonly ManualResetEventSlim _wake = new(initialState: false, spinCount: 1);
    private readonly CancellationTokenSource _stop = new();
    // Held by whichever thread dispatches (the dispatcher's, or a caller's in Submit): the workers' buffers, the
    // dirty list and the rotor have one writer at a time.
    private readonly Lock _dispatching = new();
    private readonly List<WorkerConnection> _dirty = [];
    private int _nextChunkId;
    private int _rotor;

    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Completion => _completion.Task;

    public void Start() => new Thread(Run) { IsBackground = true, Name = "pool-dispatcher" }.Start();

    /// <summary>The job has chunks to send (or, stopped, chunks to drop).</summary>
    public void Enqueue(Job job)
    {
        if (job.TryMarkQueued())
        {
            _jobs.Enqueue(job);
        }

        _wake.Set();
    }

    /// <summary>
    /// A new call, on the caller's thread: when the dispatcher is not dispatching, the caller sends what it can
    /// itself (the same pass the dispatcher's thread makes, under the same lock, so one thread at a time writes
    /// frames), and wakes the dispatcher only for what is left (no worker had room). A lone <c>Apply</c> to an idle
    /// worker thus goes out without waking the dispatcher's thread: waking a sleeping thread costs about as much as
    /// the pipe's own round trip on some machines, and a spinning dispatcher takes a core from the worker.
    /// </summary>
    public void Submit(Job job)
    {
        if (job.TryMarkQueued())
        {
            _jobs.Enqueue(job);
        }

        if (_stop.IsCancellationRequested || _dispatching.IsHeldByCurrentThread || !_dispatching.TryEnter())
        {
            _wake.Set();
            return;
        }

        try
        {
            DispatchAndFlush();
        }
        catch (Exception e)
        {
            // As on the dispatcher's thread: a bug here would leave every task waiting.
            runtime.Break($"its dispatcher failed: {e.Message}", e);
        }
        finally
        {
            _dispatching.Exit();
        }

        // Whatever arrived meanwhile, or found no room, is the dispatcher's (a freed room wakes it while work waits).
        if (HasWork)
        {
            _wake.Set();
        }
    }

    /// <summary>Tasks whose worker died before they ran: they go before new work.</summary>
    public void Retry(Chunk chunk)
    {
        _retries.Enqueue(chunk);
        _wake.Set();
    }

    /// <summary>Asks a worker to skip the rest of a chunk and cancel its running task.</summary>
    public void Cancel(WorkerConnection worker, CancelMessage cancel)
    {
        _cancels.Enqueue((worker, cancel));
        _wake.Set();
    }

    /// <summary>The job was stopped (cancelled, abandoned): its chunks on workers are cancelled too.</summary>
    public void CancelRunning(Job job)
    {
        _stoppedJobs.Enqueue(job);
        _wake.Set();
    }

    /// <summary>A function used by one call only is done: workers that bound it are told to forget it.</summary>
    public void Unbind(int functionId)
    {
        _unbinds.Enqueue(functionId);
        _wake.Set();
    }

    /// <summary>A worker joined.</summary>
    public void Wake() => _wake.Set();

    /// <summary>
    /// A worker's chunk finished, freeing room. That matters only to work waiting for room, which is always in
    /// a queue while the dispatcher looks for room (<see cref="NextChunk"/> puts a job back before it sends its
    /// chunk), so other completions do not wake it.
    /// </summary>
    public void RoomFreed()
    {
        // Pairs with the queues' interlocked enqueue: either the dispatcher sees the room or this sees the work.
        Interlocked.MemoryBarrier();
        if (!_jobs.IsEmpty || !_retries.IsEmpty)
        {
            _wake.Set();
        }
    }

    public void Stop() => _stop.Cancel();

    private void Run()
    {
        try
        {
            while (true)
            {
                // Reset before looking for work: a Set from now on makes the Wait below return at once.
                _wake.Reset();
                lock (_dispatching)
                {
                    DispatchAndFlush();
                }

                WaitForWork();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // The pool is shutting down.
        }
        catch (Exception e)
        {
            // A bug here would leave every task waiting: stop the pool so that each fails with the cause.
            runtime.Break($"its dispatcher failed: {e.Message}", e);
        }

        _completion.TrySetResult();
    }

    private void WaitForWork() => _wake.Wait(_stop.Token);

    private bool HasWork => !_jobs.IsEmpty || !_retries.IsEmpty || !_cancels.IsEmpty || !_unbinds.IsEmpty || !_stoppedJobs.IsEmpty;

    /// <summary>One pass, under <see cref="_dispatching"/>: sends what it can, then flushes every buffer it wrote.</summary>
    private void DispatchAndFlush()
    {
        try
        {
            Dispatch();
        }
        finally
        {
            foreach (WorkerConnection worker in _dirty)
            {
                worker.Flush();
            }

            _dirty.Clear();
        }
    }

    private void Dispatch()
    {
        while (_cancels.TryDequeue(out (WorkerConnection Worker, CancelMessage Cancel) cancel))
        {
            cancel.Worker.WriteCancel(cancel.Cancel);
            MarkDirty(cancel.Worker);
        }

        while (_stoppedJobs.TryDequeue(out Job? stopped))
        {
            foreach (WorkerConnection worker in runtime.Supervisor.Workers)
            {
                if (worker.CancelChunksOf(stopped))
                {
                    MarkDirty(worker);
                }
            }
        }

        while (_unbinds.TryDequeue(out int functionId))
        {
            foreach (WorkerConnection worker in runtime.Supervisor.Workers)
            {
                if (worker.Unbind(functionId))
                {
                    MarkDirty(worker);
                }
            }
        }

        while (PickWorker() is { } worker && NextChunk() is { } chunk)
        {
            Send(worker, chunk);
        }
    }

    private WorkerConnection? PickWorker()
    {
        IReadOnlyList<WorkerConnection> workers = runtime.Supervisor.Workers;
        int count = workers.Count;
        WorkerConnection? best = null;
        int bestLoad = int.MaxValue;
        for (int k = 0; k < count; k++)
        {
            WorkerConnection worker = workers[(_rotor + k) % count];
            int load = worker.InFlightCount;
            if (load < bestLoad && worker.HasRoom)
            {
                best = worker;
                bestLoad = load;
            }
        }

        _rotor++;
        return best;
    }

    private Chunk? NextChunk()
    {
        while (_retries.TryDequeue(out Chunk? retry))
        {
            if (!retry.Job.IsStopped)
            {
                return retry;
            }

            retry.Job.OnFailed(retry.FirstIndex, retry.Count, static _ => new OperationCanceledException("The call was stopped before this task ran."));
        }

        for (int rounds = _jobs.Count; rounds > 0 && _jobs.TryDequeue(out Job? job); rounds--)
        {
            job.ClearQueued();
            if (job.IsStopped)
            {
                job.DropPending();
                continue;
            }

            Chunk? chunk = job.TryTakeChunk();
            if (job.HasChunks && job.TryMarkQueued())
            {
                _jobs.Enqueue(job);
            }

            if (chunk is not null)
            {
                runtime.Metrics.Queued.Add(-chunk.Count);
                return chunk;
            }
        }

        return null;
    }

    // Apart from Send, so that its lambda's closure is allocated only when a task fails (a lambda that captures
    // a local allocates its closure where the local's scope begins, on every call).
    private static void FailOne(Job job, long index, Exception error) => job.OnFailed(index, 1, _ => error);

    private void Send(WorkerConnection worker, Chunk chunk)
    {
        if (worker.Quota < chunk.Count)
        {
            // The worker retires after its quota (MaxTasksPerWorker): it gets what fits, the rest goes next.
            _retries.Enqueue(chunk.From(worker.Quota));
            chunk.Count = worker.Quota;
        }

        chunk.Id = Interlocked.Increment(ref _nextChunkId);
        int written;
        Exception? error;
        try
        {
            written = worker.Write(chunk, out error);
        }
        catch (Exception e)
        {
            // Writing the frame failed as a whole (a chunk over the frame limit): its tasks fail with the
            // reason rather than leave their callers waiting.
            chunk.Job.OnFailed(chunk.FirstIndex, chunk.Count, _ => e);
            return;
        }

        if (written < chunk.Count)
        {
            // Cut short by an unserializable value (which fails alone) or by the frame's byte budget: the
            // tasks after the cut go next, as a chunk of their own.
            int resume = error is null ? written : written + 1;
            if (resume < chunk.Count)
            {
                _retries.Enqueue(chunk.From(resume));
            }

            if (error is not null)
            {
                FailOne(chunk.Job, chunk.FirstIndex + written, error);
            }

            chunk.Count = written;
            if (written == 0)
            {
                return;
            }
        }

        if (!worker.TryAdd(chunk))
        {
            // The worker died since it was picked: the frame in its buffer goes nowhere; send the tasks again.
            _retries.Enqueue(chunk);
            return;
        }

        MarkDirty(worker);
        if (worker.Buffered >= EagerFlushBytes)
        {
            // Large arguments go out as they are written, a megabyte at a time, so that every worker gets its
            // first one at once instead of waiting for the window of the worker before it to be written whole
            // (the write itself goes on the worker's sender thread).
            worker.Flush();
        }
    }

    private void MarkDirty(WorkerConnection worker)
    {
        if (!_dirty.Contains(worker))
        {
            _dirty.Add(worker);
        }
    }
}
