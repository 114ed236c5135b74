using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Worker;

/// <content>
/// The chunk's tasks run several at once (an async function, <c>MaxConcurrencyPerWorker</c> above 1). The
/// executor starts them in order as slots free up; each outcome is kept until every task before it is
/// reported, so the host still receives a chunk's outcomes in order. Each task that takes a token gets its
/// own, so that one task can be cancelled (its deadline passed) without the others.
/// </content>
internal sealed partial class ChunkWork<TArgs, TResult>
{
    private ConcurrentRun? _concurrent;

    public override bool CanOverlap => function.AsyncCall is not null;

    public override async Task StartConcurrentlyAsync(ConcurrentExecutor executor)
    {
        var run = new ConcurrentRun(Count, function.TakesToken);
        lock (_tokenLock)
        {
            _concurrent = run;
        }

        executor.ChunkStarted();
        Func<TArgs, CancellationToken, ValueTask<TResult>> call = function.AsyncCall!;
        for (int i = 0; i < Count; i++)
        {
            if (errors?[i] is { } error)
            {
                bool reported;
                lock (executor.Sync)
                {
                    run.Failures[i] = RemoteError.FromException(error.SourceException);
                    run.States[i] = TaskState.Failed;
                    reported = Report(executor, run);
                }

                Reported(executor, reported);
                continue;
            }

            await executor.AcquireAsync().ConfigureAwait(false);
            CancellationToken token = default;
            bool canceled;
            lock (_tokenLock)
            {
                canceled = IsCanceled;
                if (!canceled && run.Tokens is not null)
                {
                    var source = new CancellationTokenSource();
                    run.Tokens[i] = source;
                    token = source.Token;
                }
            }

            if (canceled)
            {
                executor.Release();
                bool reported;
                lock (executor.Sync)
                {
                    run.CanceledFrom = i;
                    reported = Report(executor, run);
                }

                Reported(executor, reported);
                return;
            }

            lock (executor.Sync)
            {
                run.States[i] = TaskState.Running;
                executor.Started(ChunkId, i);
            }

            ValueTask<TResult> pending;
            try
            {
                pending = call(values[i], token);
            }
            catch (Exception e)
            {
                // Thrown before its first await: the task's outcome, as in the sequential loop.
                Complete(executor, run, i, default!, e, flush: false);
                continue;
            }

            if (pending.IsCompleted)
            {
                Complete(executor, run, i, pending, flush: false);
            }
            else
            {
                int index = i;
                ConfiguredValueTaskAwaitable<TResult>.ConfiguredValueTaskAwaiter awaiter = pending.ConfigureAwait(false).GetAwaiter();
                awaiter.UnsafeOnCompleted(() => Complete(executor, run, index, awaiter));
            }
        }
    }

    private void Complete(ConcurrentExecutor executor, ConcurrentRun run, int index, ValueTask<TResult> pending, bool flush)
    {
        TResult value = default!;
        Exception? error = null;
        try
        {
            value = pending.Result;
        }
        catch (Exception e)
        {
            // The function's own exception: the task's outcome.
            error = e;
        }

        Complete(executor, run, index, value, error, flush);
    }

    private void Complete(ConcurrentExecutor executor, ConcurrentRun run, int index, ConfiguredValueTaskAwaitable<TResult>.ConfiguredValueTaskAwaiter awaiter)
    {
        TResult value = default!;
        Exception? error = null;
        try
        {
            value = awaiter.GetResult();
        }
        catch (Exception e)
        {
            // The function's own exception: the task's outcome.
            error = e;
        }

        try
        {
            Complete(executor, run, index, value, error, flush: true);
        }
        catch (Exception e)
        {
            // This runs on a thread-pool thread, where an exception would end the process: the executor
            // loop rethrows it instead (the output pipe is gone).
            executor.Fail(e);
        }
    }

    private void Complete(ConcurrentExecutor executor, ConcurrentRun run, int index, TResult value, Exception? error, bool flush)
    {
        bool tokenCanceled = false;
        if (run.Tokens is not null)
        {
            lock (_tokenLock)
            {
                tokenCanceled = run.Tokens[index]?.IsCancellationRequested ?? false;
                run.Tokens[index] = null;
            }
        }

        RemoteError? failure = error is null || (error is OperationCanceledException && (IsCanceled || tokenCanceled)) ? null : RemoteError.FromException(error);
        bool reported;
        lock (executor.Sync)
        {
            executor.Finished(ChunkId, index);
            if (error is null)
            {
                run.Results[index] = value;
                run.States[index] = TaskState.Succeeded;
            }
            else if (failure is null)
            {
                run.States[index] = TaskState.Canceled;
            }
            else
            {
                run.Failures[index] = failure;
                run.States[index] = TaskState.Failed;
            }

            reported = Report(executor, run);
            if (flush)
            {
                executor.Output.Flush();
            }
        }

        executor.Release();
        Reported(executor, reported);
    }

    /// <summary>
    /// Under the executor's lock: writes the outcomes that are next in order. Returns true once, when the last
    /// one is written: the caller then calls <see cref="Reported"/>, after it has left the lock.
    /// </summary>
    private bool Report(ConcurrentExecutor executor, ConcurrentRun run)
    {
        if (run.Reported)
        {
            return false;
        }

        ResultWriter output = executor.Output;
        while (run.Next < Count)
        {
            int i = run.Next;
            if (i >= run.CanceledFrom)
            {
                output.WriteFailure(ChunkId, i, Count - i, FailureKind.Canceled, null);
                run.Next = Count;
                break;
            }

            switch (run.States[i])
            {
                case TaskState.Succeeded:
                    output.WriteResult(ChunkId, i, function.Result, run.Results[i]);
                    run.Results[i] = default!;
                    break;
                case TaskState.Failed:
                    output.WriteFailure(ChunkId, i, 1, FailureKind.Error, run.Failures[i]);
                    run.Failures[i] = null;
                    break;
                case TaskState.Canceled:
                    output.WriteFailure(ChunkId, i, 1, FailureKind.Canceled, null);
                    break;
                default:
                    return false;
            }

            output.AfterTask();
            run.Next++;
        }

        run.Reported = true;
        ReturnRented();
        return true;
    }

    /// <summary>
    /// Outside the executor's lock, as the last thing this thread does with the chunk: tells the executor the
    /// chunk is done when <see cref="Report"/> said so. Not under the lock, because the executor may then run a
    /// synchronous function, which writes its outcomes without the lock: this thread must have finished writing
    /// (and flushing) first.
    /// </summary>
    private void Reported(ConcurrentExecutor executor, bool reported)
    {
        if (reported)
        {
            executor.ChunkReported(ChunkId);
        }
    }

    private enum TaskState : byte
    {
        Pending,
        Running,
        Succeeded,
        Failed,
        Canceled,
    }

    /// <summary>The outcomes of a chunk whose tasks run at once, held until they can be reported in order.</summary>
    private sealed class ConcurrentRun(int count, bool takesToken)
    {
        public TaskState[] States { get; } = new TaskState[count];

        public TResult[] Results { get; } = new TResult[count];

        public RemoteError?[] Failures { get; } = new RemoteError?[count];

        /// <summary>Each running task's own token source, when the function takes a token.</summary>
        public CancellationTokenSource?[]? Tokens { get; } = takesToken ? new CancellationTokenSource?[count] : null;

        /// <summary>The first task not started because the chunk was cancelled.</summary>
        public int CanceledFrom { get; set; } = int.MaxValue;

        /// <summary>The next task to report.</summary>
        public int Next { get; set; }

        /// <summary>Every task is reported and the arguments are returned.</summary>
        public bool Reported { get; set; }
    }
}
