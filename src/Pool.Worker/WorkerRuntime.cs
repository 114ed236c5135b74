using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker's two threads and their two jobs. The reader reads the pipe with blocking reads, so a read is pending
/// even while user code runs: end-of-stream means the host closed or died, and the worker goes at once. It binds
/// functions, decodes chunks and queues them, and applies cancellations. The executor runs queued chunks in order
/// and writes outcomes through the <see cref="ResultWriter"/>, flushing whenever it runs out of queued work.
/// Neither job belongs to a thread (unless tasks may overlap, <see cref="InitMessage.MaxConcurrency"/> above 1):
/// a reader that queued work while no thread executes runs it itself, at once, and leaves the reading free for the
/// other thread (the leader/follower pattern). A task that reaches an idle worker thus starts on the thread that read
/// it, with no wake-up on its way. The other thread takes the reading only once the task has run for
/// <see cref="HandOverAfter"/>: while the worker is busy it looks every millisecond, so that a short task costs no
/// wake-up of it at all (waking it for every task, and the lock it then took, cost a wake-up and a lock convoy per task:
/// issue 21); a long one has its cancellation and the frames after it read within a millisecond.
/// </summary>
internal sealed class WorkerRuntime(Stream input, Stream output, ProgressCell cell, bool exitProcessOnEndOfInput, bool progressInBand = false) : IDisposable
{
    private const int MainStackSize = 8 << 20;

    /// <summary>How long a task runs before the idle thread takes the reading (and how often it looks while the worker is busy).</summary>
    private const int HandOverAfter = 1;

    /// <summary>How many looks the idle thread makes with no task running before it sleeps until woken.</summary>
    private const int IdleLooks = 50;

    private static readonly long HandOverTicks = Stopwatch.Frequency * HandOverAfter / 1000;

    private InBandProgress? _progress;

    private readonly WorkQueue _queue = new();

    // The two threads' jobs (see the class), under _roles: whether one executes (since when), whether the reading is
    // free for the idle thread to take, whether that thread sleeps until woken (else it looks every HandOverAfter), how
    // many looks it made with nothing running, whether tasks may overlap, whether the input ended (or failed:
    // _failure). The idle thread waits on _idle.
    private readonly Lock _roles = new();
    private readonly Wakeups _idle = new();
    private bool _executing;
    private long _executingSince;
    private bool _readingFree;
    private bool _idleAsleep;
    private int _idleLooks;
    private bool _handOverNow;

    // Chunks the last read brought, counted by whichever thread reads (one at a time).
    private int _chunksRead;
    private bool _concurrent;
    private bool _ended;
    private Exception? _failure;
    private BlockingFrameReader.Source? _source;

    private readonly ConcurrentDictionary<int, ChunkWork> _pending = new();
    private readonly Dictionary<int, BoundFunction> _functions = [];
    private readonly Dictionary<int, RemoteError> _bindErrors = [];
    private readonly ResultWriter _output = new(output);
    private FunctionBinder? _binder;

    // Set from the Init frame by the reader thread before it queues any work; the channel orders the two.
    private int _maxConcurrency = 1;

    // Set from the Init frame: the pool has an initializer, so every task runs on the thread that ran it.
    private bool _pinned;

    /// <summary>Runs until the input ends; returns the process exit code.</summary>
    public int Run()
    {
        _output.WriteFrame(w => new ReadyMessage(ProtocolInfo.Version, Environment.ProcessId).Write(w));
        _output.Flush();
        if (progressInBand)
        {
            _progress = new InBandProgress(cell, _output);
            _progress.Start();
        }

        _source = new BlockingFrameReader.Source(input);
        // User code runs on either thread: this one gets the stack a process's main thread has (8 MiB, reserved, not
        // committed), not a secondary thread's 1.5 MiB, so that deep recursion that ran before still runs.
        var other = new Thread(() => Serve(reading: true), MainStackSize) { IsBackground = true, Name = "pool-worker-serve" };
        other.Start();
        try
        {
            Serve(reading: false);
            other.Join();
            if (Volatile.Read(ref _failure) is { } failure)
            {
                throw new InvalidOperationException($"The worker stopped: {failure.Message}", failure);
            }

            return 0;
        }
        finally
        {
            Dispose();
        }
    }

    public void Dispose()
    {
        _progress?.Dispose();
        _output.Dispose();
        _queue.Dispose();
        _source?.Dispose();
    }

    /// <summary>
    /// One of the two threads: reads while it holds the reading, executes while it holds the executing, else waits
    /// for the other to hand it the reading (or for the end). Returns at the end of input, once it has nothing to run.
    /// </summary>
    private void Serve(bool reading)
    {
        var context = new WorkerContext(_output, cell);
        try
        {
            while (reading ? ReadAndMaybeExecute(context, out reading) : WaitForReading(context, out reading))
            {
            }
        }
        catch (Exception e)
        {
            // The executor itself failed (a task's exception is an outcome, never this): its output pipe broke, or a bug.
            if (exitProcessOnEndOfInput)
            {
                // Say so and exit with a code of its own, now: left to unwind, the exception would close the pipe, and
                // the other thread, seeing it closed, could exit first with 0, as if the host had asked.
                Console.Error.WriteLine($"Pool.Worker: the executor failed: {e}");
                Environment.Exit(6);
            }

            // In process, the thread that called Run reports it.
            EndWith(e);
        }
    }

    /// <summary>
    /// Reads frames; when that queued work and no thread executes, runs it on this thread (leaving the reading free for
    /// the other) and, once the queue is empty, reads on if the other did not take the reading (else comes back with
    /// <paramref name="reading"/> false). False at the end.
    /// </summary>
    private bool ReadAndMaybeExecute(WorkerContext context, out bool reading)
    {
        reading = true;
        if (!Read())
        {
            return false;
        }

        // More than one chunk in one read (or one with large arrays): the host is streaming work (a Map), and reading on
        // while this thread runs keeps the queue full and the results in fewer frames; one small chunk is a lone call,
        // whose answer goes first.
        bool streaming = _chunksRead > 1;
        _chunksRead = 0;
        bool wake;
        lock (_roles)
        {
            if ((_maxConcurrency > 1 || _pinned) && !_concurrent)
            {
                // Tasks may overlap, or the pool has an initializer (both known from Init, the first frame): the idle
                // thread becomes the executor for good and this one only reads. With overlapping tasks it runs
                // ExecuteConcurrentlyAsync; with an initializer (ExecutePinned), every task runs on the thread that ran
                // it, so what it set up for its thread (thread-static state, a native library that must be called from
                // the thread that initialized it) is every task's, as on a main thread; that costs the hop from reader to
                // executor (W2: about 20 µs a call).
                _concurrent = true;
                _idle.Release();
            }

            if (_concurrent || _executing || _queue.IsEmpty || _ended)
            {
                return true;
            }

            _executing = true;
            _executingSince = Stopwatch.GetTimestamp();
            _readingFree = true;
            _handOverNow = streaming;
            _idleLooks = 0;
            wake = _idleAsleep || streaming;
            _idleAsleep = false;
        }

        if (wake)
        {
            // Streaming, the other thread takes the reading at once; else it slept (the worker was idle): from now on it
            // looks, and takes the reading if this task runs long.
            _idle.Release();
        }

        if (!ExecuteQueued(context))
        {
            reading = false;
            return false;
        }

        lock (_roles)
        {
            // Unless the other thread took it meanwhile, the reading is still this thread's.
            reading = _readingFree;
            _readingFree = false;
        }

        return true;
    }

    /// <summary>Reads and handles frames up to a point where another thread may read on; false at the end of input.</summary>
    private bool Read()
    {
        bool more;
        try
        {
            more = _source!.ReadFrames(Handle);
        }
        catch (IOException)
        {
            // The pipe broke: the host is gone, as at end of stream.
            more = false;
        }
        catch (ProtocolException e)
        {
            Console.Error.WriteLine($"Pool.Worker: {e.Message}");
            if (exitProcessOnEndOfInput)
            {
                Environment.Exit(3);
            }

            EndWith(e);
            return false;
        }

        if (!more)
        {
            EndOfInput();
        }

        return more;
    }

    /// <summary>Runs queued work while there is some (in order: one thread executes at a time), then gives up the executing; false at the end.</summary>
    private bool ExecuteQueued(WorkerContext context)
    {
        while (true)
        {
            while (_queue.TryTake() is { } work)
            {
                ExecuteOne(context, work);
            }

            lock (_roles)
            {
                // Work queued before the end still runs (the cancelled tasks report so), unless the input failed.
                if (!_queue.IsEmpty && _failure is null)
                {
                    continue;
                }

                _executing = false;
                return !_ended;
            }
        }
    }

    /// <summary>
    /// The idle thread: takes the reading once the running task has run for <see cref="HandOverAfter"/> (true,
    /// <paramref name="reading"/>), else waits a look (true) or for the end (false, after running what is left if no
    /// thread executes); when tasks may overlap, it becomes the executor for good.
    /// </summary>
    private bool WaitForReading(WorkerContext context, out bool reading)
    {
        reading = false;
        int wait;
        lock (_roles)
        {
            if (_readingFree && _executing && (_handOverNow || Stopwatch.GetTimestamp() - _executingSince >= HandOverTicks))
            {
                _readingFree = false;
                reading = true;
                return true;
            }

            if (!_ended && !_concurrent)
            {
                // Look again while something runs, or for a while after; then sleep until a task wakes this thread.
                wait = _executing || _idleLooks++ < IdleLooks ? HandOverAfter : Timeout.Infinite;
                _idleAsleep = wait == Timeout.Infinite;
            }
            else
            {
                wait = 0;
            }
        }

        if (wait != 0)
        {
            _idle.Wait(wait);
            return true;
        }

        lock (_roles)
        {
            if (!_concurrent)
            {
                if (_executing)
                {
                    return false;
                }

                _executing = true;
            }
        }

        if (_concurrent)
        {
            if (_maxConcurrency == 1)
            {
                ExecutePinned(context);
            }
            else if (_queue.Take() is { } first)
            {
                ExecuteConcurrentlyAsync(context, first).AsTask().GetAwaiter().GetResult();
            }

            return false;
        }

        ExecuteQueued(context);
        return false;
    }

    /// <summary>No more input (or a failure): the other thread stops once it has nothing to run.</summary>
    private void EndWith(Exception? failure)
    {
        lock (_roles)
        {
            _ended = true;
            _failure ??= failure;
        }

        _queue.Complete(failure);
        _idle.Release();
    }

    /// <summary>The executor of a pool with an initializer: this thread runs the initializer and every task, in order, until the end.</summary>
    private void ExecutePinned(WorkerContext context)
    {
        while (_queue.Take() is { } work)
        {
            ExecuteOne(context, work);
        }
    }

    private void ExecuteOne(WorkerContext context, WorkItem work)
    {
        Activity? trace = WorkerTracing.Start(work);
        ValueTask running = work.RunAsync(context);
        if (!running.IsCompletedSuccessfully)
        {
            // An async function: this thread waits for it (one task at a time), its continuations run on the pool.
            running.AsTask().GetAwaiter().GetResult();
        }

        trace?.Stop();

        if (work is ChunkWork chunk)
        {
            _pending.TryRemove(chunk.ChunkId, out _);
        }

        if (_queue.IsEmpty)
        {
            _output.Flush();
        }
    }

    /// <summary>
    /// The executor when async tasks may overlap: a chunk of an async function starts its tasks as slots free
    /// up and the loop moves on once they have started; anything else waits until no task runs, then runs
    /// alone as in <see cref="ExecuteOne"/>.
    /// </summary>
    private async ValueTask ExecuteConcurrentlyAsync(WorkerContext context, WorkItem first)
    {
        var executor = new ConcurrentExecutor(_maxConcurrency, context, chunkId => _pending.TryRemove(chunkId, out _));
        for (WorkItem? work = first; work is not null; work = await _queue.TakeAsync().ConfigureAwait(false))
        {
            if (work is ChunkWork { CanOverlap: true } overlapping)
            {
                // Its tasks start here and take the activity with them; it ends once the last has started.
                Activity? trace = WorkerTracing.Start(work);
                await overlapping.StartConcurrentlyAsync(executor).ConfigureAwait(false);
                trace?.Stop();
            }
            else
            {
                await executor.WhenIdleAsync().ConfigureAwait(false);
                Activity? trace = WorkerTracing.Start(work);
                await work.RunAsync(context).ConfigureAwait(false);
                trace?.Stop();
                if (work is ChunkWork chunk)
                {
                    _pending.TryRemove(chunk.ChunkId, out _);
                }
            }

            if (_queue.IsEmpty)
            {
                executor.Flush();
            }
        }

        // The input ended: the tasks still running report before the output closes.
        await executor.WhenIdleAsync().ConfigureAwait(false);
        executor.Flush();
    }

    private void EndOfInput()
    {
        if (exitProcessOnEndOfInput)
        {
            // The host closed the pipe (Close, Terminate) or died: nothing this process does matters now.
            Environment.Exit(0);
        }

        foreach (ChunkWork work in _pending.Values)
        {
            work.Cancel();
        }

        EndWith(null);
    }

    private void Handle(MessageType type, ReadOnlySequence<byte> payload)
    {
        switch (type)
        {
            case MessageType.Init:
                Initialize(InitMessage.Read(payload));
                break;
            case MessageType.Bind:
                Bind(BindMessage.Read(payload));
                break;
            case MessageType.Unbind:
                int id = SimpleMessages.ReadInt(payload);
                _functions.Remove(id);
                _bindErrors.Remove(id);
                break;
            case MessageType.Run:
                // A chunk that brought arrays as blocks counts as streaming, as the old hand-off at once did for every
                // chunk: the next chunk's megabytes are read while this one runs.
                _chunksRead += ReceivedBlocks.IsEmpty ? 1 : 2;
                Enqueue(payload);
                break;
            case MessageType.Cancel:
                CancelMessage cancel = CancelMessage.Read(payload);
                if (_pending.TryGetValue(cancel.ChunkId, out ChunkWork? work))
                {
                    if (cancel.Index == CancelMessage.WholeChunk)
                    {
                        work.Cancel();
                    }
                    else
                    {
                        work.CancelTask(cancel.Index);
                    }
                }

                break;
            default:
                throw new ProtocolException($"The host sent a frame of type {type}, which a worker does not take.");
        }
    }

    private void Initialize(InitMessage init)
    {
        PoolSerializer serializer = init.SerializerType.Length == 0
            ? new MessagePackPoolSerializer()
            : (PoolSerializer)Activator.CreateInstance(Type.GetType(init.SerializerType, throwOnError: false)
                ?? throw new ProtocolException($"The worker cannot find serializer type '{init.SerializerType}'."))!;
        _maxConcurrency = Math.Max(1, init.MaxConcurrency);
        _binder = new FunctionBinder(new CodecProvider(serializer));
        if (init.Initializer is not { } descriptor)
        {
            return;
        }

        _pinned = true;

        BoundFunction? initializer = null;
        Exception? bindError = null;
        try
        {
            initializer = _binder.Bind(descriptor);
        }
        catch (Exception e)
        {
            // Reported by the InitWork as the initializer's failure.
            bindError = e;
        }

        _queue.Add(new InitWork(initializer, init.InitializerArguments, bindError, InitializerFailed));
    }

    private void InitializerFailed()
    {
        if (exitProcessOnEndOfInput)
        {
            // The host was told; a worker without its initializer must not run tasks.
            Environment.Exit(5);
        }

        EndWith(null);
    }

    private void Bind(BindMessage bind)
    {
        FunctionBinder binder = _binder ?? throw new ProtocolException("Bind arrived before Init.");
        try
        {
            _functions[bind.FunctionId] = binder.Bind(bind.Function);
            _bindErrors.Remove(bind.FunctionId);
        }
        catch (Exception e)
        {
            // Reflection can fail in many ways; each is reported to the tasks that use this function.
            _functions.Remove(bind.FunctionId);
            _bindErrors[bind.FunctionId] = RemoteError.FromException(e is FunctionBindingException ? e : new FunctionBindingException(
                $"The worker could not bind {bind.Function.DisplayName}: {e.Message}"));
        }
    }

    private void Enqueue(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        RunHeader header = RunHeader.Read(ref reader);
        ChunkWork work;
        if (_functions.TryGetValue(header.FunctionId, out BoundFunction? function))
        {
            work = function.Decode(header, ref reader, cell);
        }
        else if (_bindErrors.TryGetValue(header.FunctionId, out RemoteError? error))
        {
            work = new FailedChunkWork(header.ChunkId, header.Count, error);
        }
        else
        {
            throw new ProtocolException($"Chunk {header.ChunkId} names function {header.FunctionId}, which was never bound.");
        }

        if ((header.Flags & RunFlags.Traced) != 0)
        {
            work.Trace = header.Trace;
        }

        _pending[header.ChunkId] = work;
        _queue.Add(work);
    }
}
