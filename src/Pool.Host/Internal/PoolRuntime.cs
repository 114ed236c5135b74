using Microsoft.Extensions.Logging;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The parts of a pool and the rules between them: the lifecycle, the jobs in progress, the dispatcher and
/// the supervisor. <see cref="ProcessPool"/> is its public face.
/// </summary>
internal sealed class PoolRuntime
{
    private readonly Lock _jobsLock = new();
    private readonly HashSet<Job> _jobs = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _shutDown = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly FunctionDescriptor? _initializer;
    private readonly byte[] _initializerArguments = [];
    private Exception? _terminationError;
    private int _initializerFailuresInARow;
    private int _shutdownStarted;
    private long _calls;
    private volatile bool _draining;

    private PoolRuntime(ProcessPoolOptions options, int workerCount, WorkerSite site)
    {
        Site = site;
        Options = options;
        Logger = options.Logger is { } logger ? new GuardedLogger(logger) : null;
        Metrics = PoolMetrics.For(options.MeterFactory);
        WorkerCount = workerCount;
        Serializer = options.Serializer ?? PoolSerializer.Default;
        Codecs = new CodecProvider(Serializer);
        Functions = new FunctionRegistry(Serializer);
        Dispatcher = new Dispatcher(this);
        Supervisor = new Supervisor(this);
        if (options.InitializerSpec is { } initializer)
        {
            _initializer = Functions.Get(initializer.Function, initializer.DelegateType, "initializer").Descriptor;
            try
            {
                _initializerArguments = initializer.EncodeArguments(Codecs);
            }
            catch (Exception e)
            {
                // Any serializer failure: the options are refused here, before a worker starts.
                throw new ArgumentException(
                    $"The arguments of the initializer {_initializer.DisplayName} could not be serialized: {e.Message} Pass plain data, or set ProcessPoolOptions.Serializer to one that handles them.",
                    nameof(options),
                    e);
            }
        }
    }

    public ProcessPoolOptions Options { get; }

    /// <summary>The pool's instruments: on <see cref="ProcessPoolOptions.MeterFactory"/>'s meter, else the process-wide one.</summary>
    public PoolMetrics Metrics { get; }

    /// <summary><see cref="ProcessPoolOptions.Logger"/>, guarded against loggers that throw; null for none.</summary>
    public ILogger? Logger { get; }

    /// <summary>The pool's secret (<see cref="WorkerHandshake"/>): given to the workers it starts, and to nobody else.</summary>
    public byte[] Secret { get; } = WorkerHandshake.NewSecret();

    public int WorkerCount { get; }

    /// <summary>Where the workers run: this machine, or a Slurm allocation.</summary>
    public WorkerSite Site { get; }

    public PoolSerializer Serializer { get; }

    public CodecProvider Codecs { get; }

    public FunctionRegistry Functions { get; }

    public PoolLifecycle Lifecycle { get; } = new();

    public Dispatcher Dispatcher { get; }

    public Supervisor Supervisor { get; }

    /// <summary>Cancelled when the pool terminates: stops worker starts and input producers.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Whether lost workers are replaced: not once terminated or shutting down after Close.</summary>
    public bool ShouldRunWorkers => Lifecycle.State != PoolState.Terminated && !_draining;

    public static async Task<PoolRuntime> StartAsync(ProcessPoolOptions options, CancellationToken cancellationToken)
    {
        int workers = options.ResolveWorkerCount();
        if (!options.InProcess)
        {
            WorkerLaunch.EnsureNotTooDeep();
        }

        WorkerSite site = options.InProcess
            ? LocalSite.Instance
            : await WorkerSite.CreateAsync(options, options.Logger is { } logger ? new GuardedLogger(logger) : null, cancellationToken).ConfigureAwait(false);
        PoolRuntime runtime;
        try
        {
            runtime = new PoolRuntime(options, workers > 0 ? workers : site.DefaultWorkerCount ?? 1, site);
        }
        catch
        {
            await site.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        if (!options.InProcess)
        {
            StaleCells.SweepOnce();
        }

        runtime.Dispatcher.Start();
        try
        {
            await runtime.Supervisor.StartAsync(runtime.WorkerCount, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            runtime.Terminate();
            await runtime.JoinAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return runtime;
    }

    public InitMessage CreateInit(int workerId) => new(
        workerId,
        Serializer.GetType() == typeof(MessagePackPoolSerializer) ? string.Empty : Serializer.GetType().AssemblyQualifiedName!,
        _initializer,
        _initializerArguments,
        Options.MaxConcurrencyPerWorker);

    /// <summary>Whether the pool runs an initializer in each worker before its first task.</summary>
    public bool HasInitializer => _initializer is not null;

    /// <summary>A worker ran the initializer: the count of failures in a row starts again.</summary>
    public void OnWorkerInitialized() => Volatile.Write(ref _initializerFailuresInARow, 0);

    /// <summary>A worker's initializer threw. Returns true when that was one failure too many and the pool stopped.</summary>
    public bool OnInitializerFailed(RemoteError error)
    {
        int failures = Interlocked.Increment(ref _initializerFailuresInARow);
        if (failures < ProcessPoolOptions.InitializerAttempts)
        {
            return false;
        }

        var failure = new InitializerException(_initializer!.DisplayName, failures, new RemoteException(error, 0));
        Break($"its initializer {_initializer.DisplayName} failed in {failures} workers in a row: {error.TypeName}: {error.Message}", failure);
        return true;
    }

    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="InitializerException">The pool stopped because its initializer failed.</exception>
    public void EnsureRunning(string operation)
    {
        if (Lifecycle.State == PoolState.Terminated && Volatile.Read(ref _terminationError) is InitializerException failure)
        {
            throw failure.Copy();
        }

        Lifecycle.EnsureRunning(operation);
    }

    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public void Submit(Job job, string operation, IProgress<PoolProgress>? callProgress = null)
    {
        job.Progress ??= NewProgress(operation, callProgress, job.ProgressTotal, parts: 1);
        lock (_jobsLock)
        {
            EnsureRunning(operation);
            _jobs.Add(job);
        }

        job.StartTrace(operation);

        if (job.Total is { } total)
        {
            Metrics.Submitted.Add(total);
            Metrics.Queued.Add(total);
        }

        Dispatcher.Submit(job);
    }

    /// <summary>The reporter of one call, shared by its <paramref name="parts"/> jobs (a <c>Run</c> of several functions); null when no progress is asked for.</summary>
    public ProgressReporter? NewProgress(string operation, IProgress<PoolProgress>? callProgress, long? total, int parts) =>
        (callProgress ?? Options.Progress) is { } progress
            ? new ProgressReporter(progress, Options.ProgressInterval, operation, Interlocked.Increment(ref _calls), total, parts)
            : null;

    public void OnJobDrained(Job job)
    {
        if (job.Function.PerCall)
        {
            // Its target was for this call only: the workers that bound it forget it.
            Dispatcher.Unbind(job.Function.Id);
        }

        bool shutDown;
        lock (_jobsLock)
        {
            _jobs.Remove(job);
            shutDown = _jobs.Count == 0 && Lifecycle.State == PoolState.Closed;
        }

        if (shutDown)
        {
            BeginShutdown(graceful: true);
        }
    }

    public void Close()
    {
        Job[] jobs;
        lock (_jobsLock)
        {
            if (!Lifecycle.TryClose())
            {
                return;
            }

            jobs = [.. _jobs];
        }

        foreach (Job job in jobs)
        {
            job.OnPoolClosed();
        }

        if (jobs.Length == 0)
        {
            BeginShutdown(graceful: true);
        }
    }

    public void Terminate() => TerminateCore(null, null);

    /// <summary>The pool cannot go on (its workers do not start): stop it, failing every task with <paramref name="error"/>.</summary>
    public void Break(string because, Exception error)
    {
        if (Logger is { } logger)
        {
            Log.PoolBroken(logger, error, because);
        }

        TerminateCore(because, error);
    }

    public Exception TerminatedError() => Volatile.Read(ref _terminationError) switch
    {
        InitializerException failure => failure.Copy(),
        { } error => new WorkerStartException($"The pool stopped: {error.Message}", error),
        null => new PoolTerminatedException("The pool was terminated before this task finished."),
    };

    /// <exception cref="InvalidOperationException">The pool is still running.</exception>
    /// <summary>Whether every worker has exited and the pool is over (what <see cref="JoinAsync"/> waits for).</summary>
    public bool IsShutDown => _shutDown.Task.IsCompleted;

    public Task JoinAsync(CancellationToken cancellationToken)
    {
        Lifecycle.EnsureCanJoin();
        return _shutDown.Task.WaitAsync(cancellationToken);
    }

    private void TerminateCore(string? because, Exception? error)
    {
        if (error is not null)
        {
            Volatile.Write(ref _terminationError, error);
        }

        if (!Lifecycle.TryTerminate(because))
        {
            return;
        }

        Job[] jobs;
        lock (_jobsLock)
        {
            jobs = [.. _jobs];
        }

        foreach (Job job in jobs)
        {
            job.Stop(TerminatedError());
        }

        _stopping.Cancel();
        Supervisor.KillAll();
        BeginShutdown(graceful: false);
    }

    private void BeginShutdown(bool graceful)
    {
        _draining = true;
        if (Interlocked.Exchange(ref _shutdownStarted, 1) != 0)
        {
            return;
        }

        _ = ShutDownAsync(graceful);
    }

    private async Task ShutDownAsync(bool graceful)
    {
        try
        {
            Dispatcher.Stop();
            await Dispatcher.Completion.ConfigureAwait(false);
            if (graceful)
            {
                Supervisor.CloseAll();
            }
            else
            {
                Supervisor.KillAll();
            }

            await Supervisor.WhenAllGoneAsync().ConfigureAwait(false);
            // A Slurm allocation the pool asked for is released once no worker runs in it.
            await Site.DisposeAsync().ConfigureAwait(false);
            _shutDown.TrySetResult();
        }
        catch (Exception e)
        {
            // Join must end, and with the reason, whatever went wrong while shutting down.
            _shutDown.TrySetException(e);
        }
    }
}
