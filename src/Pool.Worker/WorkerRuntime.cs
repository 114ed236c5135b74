using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker's two loops. A dedicated reader thread reads the pipe synchronously, so a read is always
/// pending, even while user code runs: end-of-stream means the host closed or died, and the worker goes at
/// once. It binds functions, decodes chunks and hands them to the executor, and applies cancellations.
/// The executor (the main thread, fed through a <see cref="WorkQueue"/>) runs chunks in order and writes outcomes through the <see cref="ResultWriter"/>, flushing
/// whenever it runs out of queued work.
/// </summary>
internal sealed class WorkerRuntime(Stream input, Stream output, ProgressCell cell, bool exitProcessOnEndOfInput, bool progressInBand = false) : IDisposable
{
    private InBandProgress? _progress;

    private readonly WorkQueue _queue = new();

    private readonly ConcurrentDictionary<int, ChunkWork> _pending = new();
    private readonly Dictionary<int, BoundFunction> _functions = [];
    private readonly Dictionary<int, RemoteError> _bindErrors = [];
    private readonly ResultWriter _output = new(output);
    private FunctionBinder? _binder;

    // Set from the Init frame by the reader thread before it queues any work; the channel orders the two.
    private int _maxConcurrency = 1;

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

        var reader = new Thread(ReadLoop) { IsBackground = true, Name = "pool-worker-reader" };
        reader.Start();
        try
        {
            Execute();
            return 0;
        }
        catch (Exception e) when (exitProcessOnEndOfInput)
        {
            // The executor itself failed (a task's exception is an outcome, never this): its output pipe broke, or
            // a bug. Say so and exit with a code of its own, now: left to unwind, the exception would close the
            // pipe, and the reader thread, seeing it closed, could exit first with 0, as if the host had asked.
            Console.Error.WriteLine($"Pool.Worker: the executor failed: {e}");
            Environment.Exit(6);
            throw;
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
    }

    /// <summary>The executor, on the thread that called <see cref="Run"/>: runs work items in arrival order.</summary>
    private void Execute()
    {
        var context = new WorkerContext(_output, cell);
        WorkItem? first = _queue.Take();
        if (first is not null && _maxConcurrency > 1)
        {
            ExecuteConcurrentlyAsync(context, first).AsTask().GetAwaiter().GetResult();
            return;
        }

        for (WorkItem? work = first; work is not null; work = _queue.Take())
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
    }

    /// <summary>
    /// The executor when async tasks may overlap: a chunk of an async function starts its tasks as slots free
    /// up and the loop moves on once they have started; anything else waits until no task runs, then runs
    /// alone as in <see cref="Execute"/>.
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

    private void ReadLoop()
    {
        try
        {
            BlockingFrameReader.Run(input, Handle);
        }
        catch (IOException)
        {
            // The pipe broke: the host is gone, as at end of stream.
        }
        catch (ProtocolException e)
        {
            Console.Error.WriteLine($"Pool.Worker: {e.Message}");
            if (exitProcessOnEndOfInput)
            {
                Environment.Exit(3);
            }

            _queue.Complete(e);
            return;
        }

        EndOfInput();
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

        _queue.Complete();
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

        _queue.Complete();
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
            work = function.Decode(header, ref reader);
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
