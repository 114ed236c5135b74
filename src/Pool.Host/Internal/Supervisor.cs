using Microsoft.Extensions.Logging;

namespace Pool.Internal;

/// <summary>
/// Keeps N workers alive: starts them in parallel, and when one is lost settles its tasks (the one it was
/// running fails with <see cref="WorkerCrashedException"/>, the others run again elsewhere) and starts a
/// replacement. Replacements that keep failing to start stop the pool instead of looping forever.
/// </summary>
internal sealed class Supervisor(PoolRuntime runtime)
{
    /// <summary>How often in a row a replacement may fail to start before the pool gives up.</summary>
    public const int StartAttempts = 3;

    /// <summary>How many workers may die holding a chunk, not running it, before its tasks fail.</summary>
    public const int MaxChunkAttempts = 3;

    private readonly Lock _lock = new();
    private readonly List<Task> _watchers = [];
    private readonly List<int> _startedProcessIds = [];
    private readonly Signal _changed = new();
    private WorkerConnection[] _workers = [];
    private int _nextId;

    public IReadOnlyList<WorkerConnection> Workers => Volatile.Read(ref _workers);

    /// <summary>Every process id this pool has started, for tests that check none outlives it.</summary>
    public IReadOnlyList<int> StartedProcessIds
    {
        get
        {
            lock (_lock)
            {
                return [.. _startedProcessIds];
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="count"/> workers at once. The first that fails cancels the others' starts, so a start
    /// that fails part-way (a process limit, a worker that never says Ready) ends within the start timeout; the
    /// caller then terminates the pool, which kills every worker that did start.
    /// </summary>
    public async Task StartAsync(int count, CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task[] starts = new Task[count];
        for (int i = 0; i < count; i++)
        {
            starts[i] = StartFirstAsync(failed);
        }

        try
        {
            await Task.WhenAll(starts).ConfigureAwait(false);
        }
        catch (Exception) when (FirstFailure(starts) is { } first)
        {
            // A start that failed on its own, not one cancelled because another failed (a cancellation by the caller propagates as it is).
            throw first is WorkerStartException ? first : new WorkerStartException($"The pool's workers could not be started: {first.Message}", first);
        }
    }

    private static Exception? FirstFailure(Task[] starts) =>
        Array.Find(starts, t => t.IsFaulted && t.Exception!.InnerException is not OperationCanceledException)?.Exception!.InnerException;

    private async Task StartFirstAsync(CancellationTokenSource failed)
    {
        try
        {
            await StartOneAsync(failed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Completes when <paramref name="count"/> workers are running and taking work (tests: the pool is whole again after a crash or a retirement).</summary>
    public async Task WhenWorkersAsync(int count, CancellationToken cancellationToken)
    {
        while (Workers.Count(w => !w.IsDead && !w.IsRetiring) < count)
        {
            await _changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes every worker's pipe: each exits when it sees the end.</summary>
    public void CloseAll()
    {
        foreach (WorkerConnection worker in Workers)
        {
            worker.CloseGracefully();
        }
    }

    public void KillAll()
    {
        foreach (WorkerConnection worker in Workers)
        {
            worker.Kill();
        }
    }

    /// <summary>Completes when every worker started so far is gone and settled.</summary>
    public async Task WhenAllGoneAsync()
    {
        while (true)
        {
            Task[] watchers;
            lock (_lock)
            {
                watchers = [.. _watchers];
            }

            await Task.WhenAll(watchers).ConfigureAwait(false);
            lock (_lock)
            {
                if (_watchers.Count == watchers.Length)
                {
                    return;
                }
            }
        }
    }

    private ILogger? Logger => runtime.Logger;

    private async Task<WorkerConnection> StartOneAsync(CancellationToken cancellationToken)
    {
        int id = Interlocked.Increment(ref _nextId);
        ProcessPoolOptions options = runtime.Options;
        IWorkerTransport transport = options.InProcess
            ? InProcessWorker.Start(id)
            : await WorkerProcess.StartAsync(
                runtime.Site, WorkerLaunch.Current, id, options.WorkerOutput ?? OutputHandler(runtime.Logger), runtime.Site.WithThreadLimits(options.WorkerEnvironment, runtime.WorkerCount),
                runtime.Secret, stray => stray.Log(runtime.Logger, id), options.StartTimeout, cancellationToken)
                .ConfigureAwait(false);
        lock (_lock)
        {
            _startedProcessIds.Add(transport.ProcessId);
        }

        WorkerConnection connection;
        try
        {
            connection = await WorkerConnection.OpenAsync(id, transport, runtime, options.StartTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            transport.Kill();
            transport.Dispose();
            throw;
        }

        lock (_lock)
        {
            _workers = [.. _workers, connection];
            _watchers.Add(WatchAsync(connection));
        }

        _changed.Set();
        if (Logger is { } logger)
        {
            Log.WorkerStarted(logger, connection.Id, connection.ProcessId);
        }

        if (!runtime.ShouldRunWorkers)
        {
            // The pool stopped while this worker was starting.
            connection.Kill();
        }

        runtime.Dispatcher.Wake();
        return connection;
    }

    private async Task WatchAsync(WorkerConnection connection)
    {
        WorkerLoss loss = await connection.Lost.ConfigureAwait(false);
        lock (_lock)
        {
            _workers = [.. _workers.Where(w => w != connection)];
        }

        _changed.Set();

        LogLoss(loss);
        if (loss.Failure is WorkerSilence && connection.Transport.Node is { } node)
        {
            // Its node went silent: replacements go to the other nodes.
            runtime.Site.OnNodeLost(node);
        }

        Settle(loss);
        connection.Dispose();
        if (loss.InitializerError is { } initializerError && runtime.OnInitializerFailed(initializerError))
        {
            // The initializer failed once too often: the pool stopped instead of starting workers forever.
            return;
        }

        if ((!loss.Expected || loss.Retired) && runtime.ShouldRunWorkers)
        {
            await ReplaceAsync().ConfigureAwait(false);
        }
    }

    private async Task ReplaceAsync()
    {
        for (int attempt = 1; runtime.ShouldRunWorkers; attempt++)
        {
            try
            {
                WorkerConnection replacement = await StartOneAsync(runtime.Stopping).ConfigureAwait(false);
                runtime.Metrics.Restarts.Add(1);
                if (Logger is { } logger)
                {
                    Log.ReplacementStarted(logger, replacement.Id, replacement.ProcessId);
                }

                return;
            }
            catch (OperationCanceledException) when (runtime.Stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (attempt < StartAttempts)
            {
                // Try again; the start failure of the last attempt stops the pool below.
                if (Logger is { } logger)
                {
                    Log.ReplacementFailed(logger, e, attempt, StartAttempts);
                }
                else
                {
                    Console.Error.WriteLine($"ProcessPool: a replacement worker failed to start (attempt {attempt} of {StartAttempts}): {e.Message}");
                }
            }
            catch (Exception e)
            {
                if (Logger is { } logger)
                {
                    Log.ReplacementFailed(logger, e, attempt, StartAttempts);
                }

                // Without workers no task can end: stop the pool, failing every task with the cause.
                runtime.Break($"replacement workers failed to start {StartAttempts} times in a row: {e.Message}", e);
                return;
            }
        }
    }

    /// <summary>The tasks a lost worker held: the one it was running fails, the others run again.</summary>
    private void Settle(WorkerLoss loss)
    {
        WorkerConnection worker = loss.Worker;
        // Whether some task fails with an error that tells of this loss.
        bool told = false;
        bool corrupt = loss.Failure is Contracts.ProtocolException;
        // A corrupt stream is blamed on the task whose result it should have carried next (see CorruptStreamCulprit); a
        // worker the pool killed to stop a task, on that task (the task it was running may be another, innocent one, as
        // when the task stopped was one whose arguments it was decoding).
        TaskPosition? blamed = corrupt ? CorruptStreamCulprit(loss) : loss.Stopped?.Position ?? loss.Running;
        foreach (Chunk chunk in loss.Orphans)
        {
            int from = chunk.Accounted;
            if (from >= chunk.Count)
            {
                continue;
            }

            if (runtime.Lifecycle.State == PoolState.Terminated)
            {
                chunk.Job.OnFailed(chunk.FirstIndex + from, chunk.Count - from, _ => runtime.TerminatedError());
                continue;
            }

            if (blamed is { } running && running.ChunkId == chunk.Id && running.Index >= from && running.Index < chunk.Count)
            {
                if (running.Index > from)
                {
                    runtime.Dispatcher.Retry(chunk.Slice(from, running.Index - from));
                }

                string function = chunk.Job.Function.DisplayName;
                Func<long, Exception> error = loss.Stopped is { } stop && stop.Position == running
                    ? stop.Error
                    : loss.Failure is WorkerSilence silence
                        ? index => new WorkerLostException(worker.Id, worker.ProcessId, worker.Transport.Node, silence.Silent, worker.Transport.StandardErrorTail, index, function)
                    : corrupt
                        ? index => new CorruptStreamException(
                            worker.Id, worker.ProcessId, loss.Exit, worker.Transport.StandardErrorTail, index, function, loss.Failure!.Message)
                        : index => Crashed(loss, index, $"while running task {index} of {function}");
                chunk.Job.OnFailed(chunk.FirstIndex + running.Index, 1, error);
                told = true;
                if (running.Index + 1 < chunk.Count)
                {
                    runtime.Dispatcher.Retry(chunk.From(running.Index + 1));
                }

                continue;
            }

            Chunk rest = chunk.From(from);
            // Queued tasks are suspects only when the death cannot be pinned on a task (it died between tasks, with no
            // argument being decoded): not when a running task is known, nor when the worker was killed on purpose or
            // its initializer failed.
            if (loss.Running is null && loss.Stopped is null && loss.InitializerError is null && !corrupt && loss.Failure is not WorkerSilence)
            {
                rest.Attempts++;
            }

            if (rest.Attempts >= MaxChunkAttempts)
            {
                chunk.Job.OnFailed(rest.FirstIndex, rest.Count, index => Crashed(
                    loss, index, $"while task {index} of {chunk.Job.Function.DisplayName} was queued on it; {rest.Attempts} workers died holding this task"));
                told = true;
            }
            else
            {
                runtime.Dispatcher.Retry(rest);
            }
        }

        if (!loss.Expected && !told && loss.InitializerError is null && runtime.ShouldRunWorkers && Logger is null)
        {
            // No task fails with the reason (the worker died between tasks, or its tasks run again elsewhere):
            // without a logger, this line is the only trace of why the worker was replaced.
            Console.Error.WriteLine($"ProcessPool: worker {worker.Id} (pid {worker.ProcessId}) was lost with {loss.Exit.Describe()} ({Reason(loss)}); starting a replacement.");
        }
    }

    /// <summary>
    /// The task a corrupt stream is blamed on: the one the worker is running, when that is the next one owed of the
    /// oldest chunk it holds (a function that wrote to the pipe and runs on); else the first task of that chunk
    /// without an outcome, whose result the garbage stood in place of (the function wrote and returned, and the worker
    /// went on to the next task). Null when no outcome is owed.
    /// </summary>
    private static TaskPosition? CorruptStreamCulprit(WorkerLoss loss)
    {
        foreach (Chunk chunk in loss.Orphans)
        {
            if (chunk.Accounted < chunk.Count)
            {
                return loss.Running is { } running && running.ChunkId == chunk.Id && running.Index >= chunk.Accounted && running.Index < chunk.Count
                    ? running
                    : new TaskPosition(chunk.Id, chunk.Accounted);
            }
        }

        return null;
    }

    /// <summary>Why a worker that was not asked to go is gone, in a few words.</summary>
    private static string Reason(WorkerLoss loss) =>
        loss.Failure is Contracts.ProtocolException corrupt
            ? $"its output stream to the pool was corrupt ({corrupt.Message}); the pool killed it"
            : loss.Failure?.Message ?? (loss.Stopped is not null ? "killed by the pool to stop a task" : "its process ended");

    private void LogLoss(WorkerLoss loss)
    {
        if (Logger is not { } logger)
        {
            return;
        }

        WorkerConnection worker = loss.Worker;
        if (loss.InitializerError is { } initializerError)
        {
            Log.InitializerFailed(logger, worker.Id, worker.ProcessId, initializerError.TypeName, initializerError.Message);
        }
        else if (loss.Expected || runtime.Lifecycle.State == PoolState.Terminated)
        {
            // Closed with no work left, retired, or killed by Terminate (and Dispose): as the pool asked.
            Log.WorkerExited(logger, worker.Id, worker.ProcessId, loss.Exit.ExitCode);
        }
        else
        {
            Log.WorkerCrashed(logger, worker.Id, worker.ProcessId, loss.Exit.ExitCode, loss.Exit.SignalName ?? "none", loss.Orphans.Count, Reason(loss), worker.Transport.StandardErrorTail);
        }
    }

    private static Action<WorkerOutputLine> OutputHandler(ILogger? logger) =>
        logger is null ? WriteToStandardError : line => Log.WorkerOutput(logger, line);

    private static WorkerCrashedException Crashed(WorkerLoss loss, long index, string what) =>
        new(loss.Worker.Id, loss.Worker.ProcessId, loss.Exit, loss.Worker.Transport.StandardErrorTail, index, what, loss.Worker.Transport.Node);

    private static void WriteToStandardError(WorkerOutputLine line) => Console.Error.WriteLine(line.ToString());
}
