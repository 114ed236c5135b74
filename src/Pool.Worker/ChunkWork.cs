using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>What a chunk needs from the worker while it runs.</summary>
internal sealed record WorkerContext(ResultWriter Output, ProgressCell Cell);

/// <summary>Something the executor runs, in the order it arrived.</summary>
internal abstract class WorkItem
{
    public abstract ValueTask RunAsync(WorkerContext context);
}

/// <summary>
/// Runs the pool's initializer before any task. It reports <see cref="MessageType.Initialized"/>, or
/// <see cref="MessageType.InitFailed"/> with the error, after which the worker stops.
/// </summary>
internal sealed class InitWork(BoundFunction? initializer, byte[] arguments, Exception? bindError, Action onFailed) : WorkItem
{
    public override async ValueTask RunAsync(WorkerContext context)
    {
        Exception? error = bindError ?? await initializer!.InvokeOnceAsync(arguments).ConfigureAwait(false);
        if (error is null)
        {
            context.Output.WriteFrame(SimpleMessages.WriteInitialized);
            context.Output.Flush();
            return;
        }

        context.Output.WriteFrame(w => SimpleMessages.WriteInitFailed(w, RemoteError.FromException(error)));
        context.Output.Flush();
        onFailed();
    }
}

/// <summary>A decoded chunk waiting for, or in, the executor. The reader thread may cancel it at any time.</summary>
internal abstract class ChunkWork(int chunkId, int count) : WorkItem
{
    private volatile bool _canceled;

    public int ChunkId => chunkId;

    public int Count => count;

    /// <summary>The W3C context the host sent with the chunk (<see cref="RunFlags.Traced"/>), else default.</summary>
    public ActivityContext Trace { get; set; }

    protected bool IsCanceled => _canceled;

    /// <summary>Skips the tasks not yet started; a running task that takes a token sees it cancelled.</summary>
    public virtual void Cancel() => _canceled = true;

    /// <summary>Cancels the token of task <paramref name="index"/> if it is the one running (a deadline passed).</summary>
    public virtual void CancelTask(int index)
    {
    }

    /// <summary>Whether its tasks may run while other tasks run (an async function), when the worker allows it.</summary>
    public virtual bool CanOverlap => false;

    /// <summary>Starts the tasks as the executor's slots allow; returns once the last one has started.</summary>
    public virtual Task StartConcurrentlyAsync(ConcurrentExecutor executor) => throw new NotSupportedException("Only chunks of async functions run concurrently.");
}

/// <summary>A chunk whose function could not be bound: every task fails with the same error.</summary>
internal sealed class FailedChunkWork(int chunkId, int count, RemoteError error) : ChunkWork(chunkId, count)
{
    public override ValueTask RunAsync(WorkerContext context)
    {
        context.Output.WriteFailure(ChunkId, 0, Count, FailureKind.Error, error);
        return default;
    }
}

/// <summary>
/// Runs the tasks of a chunk in order, one outcome frame entry per task. <c>decodeTicks</c> (rented, returned with
/// <c>values</c>): for a chunk with a deadline whose arguments ran user code to decode, how long each task's took,
/// counted into its time.
/// </summary>
internal sealed partial class ChunkWork<TArgs, TResult>(
    BoundFunction<TArgs, TResult> function,
    RunHeader header,
    TArgs[] values,
    ExceptionDispatchInfo?[]? errors,
    long[]? decodeTicks = null) : ChunkWork(header.ChunkId, header.Count)
{
    private readonly bool _timed = (header.Flags & RunFlags.Timed) != 0;
    private readonly Lock _tokenLock = new();
    private CancellationTokenSource? _cancellation = function.TakesToken ? new CancellationTokenSource() : null;
    private int _running = -1;

    public override void Cancel()
    {
        base.Cancel();
        CancellationTokenSource?[]? running = null;
        lock (_tokenLock)
        {
            if (_concurrent is { } run)
            {
                running = [.. run.Tokens ?? []];
            }
            else
            {
                _cancellation?.Cancel();
            }
        }

        foreach (CancellationTokenSource? source in running ?? [])
        {
            source?.Cancel();
        }
    }

    public override void CancelTask(int index)
    {
        CancellationTokenSource? running = null;
        lock (_tokenLock)
        {
            if (_concurrent is { } run)
            {
                running = run.Tokens?[index];
            }
            else if (_running == index)
            {
                _cancellation?.Cancel();
            }
        }

        running?.Cancel();
    }

    /// <summary>The token for task <paramref name="index"/>: a fresh one if a cancelled task used the last.</summary>
    private CancellationToken TokenFor(int index)
    {
        if (_cancellation is null)
        {
            return default;
        }

        lock (_tokenLock)
        {
            _running = index;
            if (_cancellation.IsCancellationRequested && !IsCanceled)
            {
                _cancellation = new CancellationTokenSource();
            }

            return _cancellation.Token;
        }
    }

    public override ValueTask RunAsync(WorkerContext context)
    {
        if (function.SyncCall is { } call)
        {
            if (function.Result is RawCodec<TResult> && _cancellation is null && errors is null && !_timed)
            {
                RunRaw(context, call);
            }
            else
            {
                RunSynchronously(context, call);
            }

            return default;
        }

        return RunAsynchronously(context, function.AsyncCall!);
    }

    private void RunSynchronously(WorkerContext context, Func<TArgs, CancellationToken, TResult> call)
    {
        ResultWriter output = context.Output;
        try
        {
            for (int i = 0; i < Count; i++)
            {
                Step step = BeforeTask(context, i);
                if (step == Step.Stop)
                {
                    break;
                }

                if (step == Step.Skip)
                {
                    continue;
                }

                TResult result;
                try
                {
                    result = call(values[i], TokenFor(i));
                }
                catch (Exception e)
                {
                    // Whatever the function throws is its task's outcome, sent to the host as data.
                    ReportError(output, i, e);
                    continue;
                }

                output.WriteResult(ChunkId, i, function.Result, result);
                output.AfterTask();
            }
        }
        finally
        {
            context.Cell.Leave();
            ReturnRented();
        }
    }

    /// <summary>
    /// The tiny-task loop: a function of no token whose results are raw (numbers), no deadline, every argument
    /// decoded. Tasks run in runs of <see cref="ResultWriter.TasksUntilCheck"/> (one while tasks are slow, up
    /// to 256 while they are tiny), each writing its result straight into the results frame; the writer's
    /// bookkeeping happens once per run. Each task still shows in the progress cell (a crash blames it) and
    /// still sees a cancellation of the chunk before it starts.
    /// </summary>
    private void RunRaw(WorkerContext context, Func<TArgs, CancellationToken, TResult> call)
    {
        ResultWriter output = context.Output;
        ProgressCell cell = context.Cell;
        Func<TArgs, TResult>? direct = function.DirectCall;
        int size = Unsafe.SizeOf<TResult>();
        try
        {
            int next = 0;
            while (next < Count)
            {
                int run = Math.Min(output.TasksUntilCheck, Count - next);
                Span<byte> slots = output.ReserveRaw(ChunkId, next, run * size);
                int done = 0;
                Exception? failure = null;
                for (; done < run && !IsCanceled; done++)
                {
                    cell.Enter(ChunkId, next + done);
                    try
                    {
                        TArgs value = values[next + done];
                        Unsafe.WriteUnaligned(ref slots[done * size], direct is not null ? direct(value) : call(value, default));
                    }
                    catch (Exception e)
                    {
                        failure = e;
                        break;
                    }
                }

                output.CommitRaw(done, done * size);
                next += done;
                if (failure is not null)
                {
                    ReportError(output, next, failure);
                    next++;
                }
                else if (IsCanceled && next < Count)
                {
                    output.WriteFailure(ChunkId, next, Count - next, FailureKind.Canceled, null);
                    break;
                }
                else
                {
                    output.AfterTasks(done);
                }
            }
        }
        finally
        {
            cell.Leave();
            ReturnRented();
        }
    }

    private async ValueTask RunAsynchronously(WorkerContext context, Func<TArgs, CancellationToken, ValueTask<TResult>> call)
    {
        ResultWriter output = context.Output;
        try
        {
            for (int i = 0; i < Count; i++)
            {
                Step step = BeforeTask(context, i);
                if (step == Step.Stop)
                {
                    break;
                }

                if (step == Step.Skip)
                {
                    continue;
                }

                TResult result;
                try
                {
                    result = await call(values[i], TokenFor(i)).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    // As in the synchronous loop: the exception is the task's outcome.
                    ReportError(output, i, e);
                    continue;
                }

                output.WriteResult(ChunkId, i, function.Result, result);
                output.AfterTask();
            }
        }
        finally
        {
            context.Cell.Leave();
            ReturnRented();
        }
    }

    private void ReturnRented()
    {
        Rented.Return(values);
        if (decodeTicks is not null)
        {
            ArrayPool<long>.Shared.Return(decodeTicks);
        }
    }

    private enum Step
    {
        Run,
        Skip,
        Stop,
    }

    /// <summary>Reports a cancelled rest, or an argument that did not decode; else marks the task started.</summary>
    private Step BeforeTask(WorkerContext context, int index)
    {
        if (IsCanceled)
        {
            context.Output.WriteFailure(ChunkId, index, Count - index, FailureKind.Canceled, null);
            return Step.Stop;
        }

        if (errors?[index] is { } error)
        {
            context.Output.WriteFailure(ChunkId, index, 1, FailureKind.Error, RemoteError.FromException(error.SourceException));
            context.Output.AfterTask();
            return Step.Skip;
        }

        if (decodeTicks is not null)
        {
            // Its timeout covers the decoding of its arguments too, as if it had run on from then.
            context.Cell.Show(ChunkId, index, Stopwatch.GetTimestamp() - decodeTicks[index]);
        }
        else if (_timed)
        {
            context.Cell.EnterTimed(ChunkId, index);
        }
        else
        {
            context.Cell.Enter(ChunkId, index);
        }

        return Step.Run;
    }

    private void ReportError(ResultWriter output, int index, Exception e)
    {
        if (e is OperationCanceledException && (IsCanceled || (_cancellation?.IsCancellationRequested ?? false)))
        {
            output.WriteFailure(ChunkId, index, 1, FailureKind.Canceled, null);
        }
        else
        {
            output.WriteFailure(ChunkId, index, 1, FailureKind.Error, RemoteError.FromException(e));
        }

        output.AfterTask();
    }
}
