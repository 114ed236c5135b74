using System.Reflection;
using Microsoft.Extensions.Logging;
using Pool.Contracts;
using Pool.Internal;

namespace Pool;

/// <summary>
/// How a <see cref="ProcessPool"/> runs. A plain immutable object with documented defaults, checked once
/// when the pool is created; change it with <c>with</c>: <c>options with { Workers = 4 }</c>.
/// </summary>
public sealed record ProcessPoolOptions
{
    /// <summary>
    /// How many worker processes. Null (the default) is one per core, <see cref="Environment.ProcessorCount"/>;
    /// a negative number counts back from it, as joblib's <c>n_jobs</c> does: -1 is every core, -2 all but one.
    /// At most <see cref="MaxWorkersPerCore"/> × the core count. Python: <c>Pool(processes)</c> (which has no upper bound).
    /// </summary>
    public int? Workers { get; init; }

    /// <summary>
    /// The most workers a pool may have per core: 64. Each worker is a .NET process (about 20-30 MiB and 45 ms of CPU
    /// to start), so more than this is a mistake, not a plan: the pool refuses it at construction rather than spend
    /// minutes starting processes until the machine runs out of memory or of processes.
    /// </summary>
    public const int MaxWorkersPerCore = 64;

    /// <summary>
    /// Runs every task in this process, one at a time, on a thread of the pool, with no worker process: for
    /// stepping through the function in a debugger, as joblib's <c>n_jobs=1</c>. Values still go through the
    /// serializer and the protocol, so what works here works in workers. A crash in the function is then a
    /// crash of the application. Default: false.
    /// </summary>
    public bool InProcess { get; init; }

    /// <summary>
    /// Where the workers run: null (the default) starts them as child processes on this machine;
    /// a <see cref="SlurmLauncher"/> runs them on the nodes of a Slurm allocation. Not with <see cref="InProcess"/>.
    /// </summary>
    public WorkerLauncher? Launcher { get; init; }

    /// <summary>The serializer for arguments and results. Default: <see cref="PoolSerializer.Default"/>.</summary>
    public PoolSerializer? Serializer { get; init; }

    /// <summary>
    /// How long a worker may take from launch to ready; and, with an initializer (<see cref="WithInitializer(Action)"/>),
    /// how long the initializer may then run: one that has not finished by then counts as a failed attempt (its worker
    /// is killed and replaced; see <see cref="InitializerAttempts"/>), so an initializer that hangs stops the pool with
    /// an <see cref="InitializerException"/> instead of holding every task forever. Default: 30 seconds; at most 24 days.
    /// </summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Receives each line the workers write to stdout or stderr. Default (null): the line goes to
    /// <see cref="Logger"/> when one is set (stdout and stderr at Information, with WorkerId and
    /// ProcessId fields), else to this process's stderr as <c>[worker 2#12345] text</c>. Called on a
    /// thread-pool thread.
    /// </summary>
    public Action<WorkerOutputLine>? WorkerOutput { get; init; }

    /// <summary>
    /// Where the pool logs what happens to its workers: started and exited (Debug), crashed with exit code and
    /// signal, task timed out and worker killed (Warning), replacement started (Information), replacement failed
    /// to start, initializer failed, pool broken (Error); and the workers' output lines when
    /// <see cref="WorkerOutput"/> is null. Default: null, no logging; the few pool messages go to stderr as before
    /// (a replacement that failed to start; a worker lost with no task failing to say why, as when it died between tasks).
    /// Python: <c>multiprocessing.log_to_stderr()</c> / <c>get_logger()</c>; joblib's <c>verbose</c>.
    /// </summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Where the pool creates its meter (<see cref="ProcessPoolTelemetry.MeterName"/>): an application's
    /// <see cref="System.Diagnostics.Metrics.IMeterFactory"/> from dependency injection, so that its metrics pipeline
    /// and tests (<c>MetricCollector</c>) see this pool's instruments. Default (null): the process-wide meter of that
    /// name, which every pool without a factory shares. Python has no equivalent.
    /// </summary>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; init; }

    /// <summary>
    /// Receives the progress of every call of the pool (Map, Imap, Apply...), each identified by
    /// <see cref="PoolProgress.Operation"/> and <see cref="PoolProgress.CallId"/>: at most once per
    /// <see cref="ProgressInterval"/> while tasks end, and once more when the call has every outcome, before the
    /// call returns. Called on a thread-pool thread, one report at a time per call, with counts that never go down.
    /// For one call's progress alone, use <see cref="ProcessPool.WithProgress"/>. Default: null, no reports. Python: a <c>tqdm</c> bar around <c>imap</c>, joblib's <c>verbose</c> progress lines.
    /// </summary>
    public IProgress<PoolProgress>? Progress { get; init; }

    /// <summary>The shortest time between two reports to <see cref="Progress"/> for one call. Default: 100 ms.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Environment variables to set (or, with a null value, remove) in every worker. Default: none.</summary>
    public IReadOnlyDictionary<string, string?> WorkerEnvironment { get; init; } = new Dictionary<string, string?>();

    /// <summary>
    /// How long one task may take in its worker, counted from when the worker begins decoding its arguments (an
    /// argument type's constructor or serializer callback runs there), not while it waits in the worker's queue. On
    /// expiry the task fails with <see cref="TaskTimeoutException"/>: a function that takes a
    /// <see cref="CancellationToken"/> sees it cancelled and has <see cref="CancellationGrace"/> to end; otherwise
    /// (or after the grace, or when the worker is still decoding the arguments) its worker is killed with its process
    /// tree and replaced, and the worker's other tasks run elsewhere. Each call can set its own (<c>taskTimeout</c>).
    /// Default: none.
    /// Python: pebble's <c>timeout</c>. In <see cref="InProcess"/> mode only the token is cancelled.
    /// </summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>
    /// How long a task whose call was cancelled, or whose timeout passed, may take to end after its token is
    /// cancelled before its worker is killed and replaced. Default: 1 second.
    /// </summary>
    public TimeSpan CancellationGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many tasks a worker runs before it is replaced by a fresh one, to bound leaks in native code.
    /// Chunks are split to fit, so the count is exact. Default: null, workers live as long as the pool.
    /// Python: <c>Pool(maxtasksperchild=...)</c>.
    /// </summary>
    public int? MaxTasksPerWorker { get; init; }

    /// <summary>
    /// How many tasks of an async function (one that returns <c>Task&lt;T&gt;</c> or <c>ValueTask&lt;T&gt;</c>) one
    /// worker runs at once, for I/O-bound work: a worker starts the next task while earlier ones await. Results
    /// still come back in input order. Synchronous functions always run one at a time. With more than one, a
    /// worker that dies is blamed on its oldest running task (the others it ran are sent again, and may run
    /// twice), and a task timeout is checked on the oldest running task of each worker. Default: 1.
    /// Python: aiomultiprocess's <c>Pool(childconcurrency=...)</c>; <c>multiprocessing.Pool</c> has none.
    /// </summary>
    public int MaxConcurrencyPerWorker { get; init; } = 1;

    /// <summary>
    /// How many workers in a row may fail to run the initializer (it threw, its worker died, or it did not finish
    /// within <see cref="StartTimeout"/>) before the pool stops, failing every task with
    /// <see cref="InitializerException"/> (Python's pool would start workers forever). Fixed at 3.
    /// </summary>
    public static int InitializerAttempts => 3;

    /// <summary>The function every worker runs once before its first task (see <see cref="WithInitializer(Action)"/>); null for none.</summary>
    public Delegate? Initializer => InitializerSpec?.Function;

    internal PoolInitializer? InitializerSpec { get; private init; }

    /// <summary>
    /// Runs <paramref name="initializer"/> once in every worker, replacements included, before its first
    /// task: to load a model, open a connection, set up native state. If it throws, its worker dies, or it has not
    /// finished within <see cref="StartTimeout"/> of its worker being ready, the worker is killed and replaced; after
    /// <see cref="InitializerAttempts"/> failures in a row the pool stops (see <see cref="InitializerException"/>).
    /// The function is shipped as task functions are. Python: <c>Pool(initializer=f)</c>.
    /// </summary>
    public ProcessPoolOptions WithInitializer(Action initializer) =>
        this with { InitializerSpec = new PoolInitializer(initializer, typeof(Action), static _ => []) };

    /// <summary>As <see cref="WithInitializer(Action)"/>, with an argument sent to every worker. Python: <c>Pool(initializer=f, initargs=(a,))</c>.</summary>
    public ProcessPoolOptions WithInitializer<T>(Action<T> initializer, T arg) =>
        this with { InitializerSpec = new PoolInitializer(initializer, typeof(Action<T>), codecs => PoolInitializer.Encode(new Args1<T>(codecs.Get<T>()), arg)) };

    /// <summary>As <see cref="WithInitializer(Action)"/>, with two arguments. Python: <c>initargs=(a, b)</c>.</summary>
    public ProcessPoolOptions WithInitializer<T1, T2>(Action<T1, T2> initializer, T1 arg1, T2 arg2) =>
        this with { InitializerSpec = new PoolInitializer(initializer, typeof(Action<T1, T2>), codecs => PoolInitializer.Encode(new Args2<T1, T2>(codecs.Get<T1>(), codecs.Get<T2>()), (arg1, arg2))) };

    /// <summary>As <see cref="WithInitializer(Action)"/>, with three arguments. Python: <c>initargs=(a, b, c)</c>.</summary>
    public ProcessPoolOptions WithInitializer<T1, T2, T3>(Action<T1, T2, T3> initializer, T1 arg1, T2 arg2, T3 arg3) =>
        this with
        {
            InitializerSpec = new PoolInitializer(
                initializer, typeof(Action<T1, T2, T3>), codecs => PoolInitializer.Encode(new Args3<T1, T2, T3>(codecs.Get<T1>(), codecs.Get<T2>(), codecs.Get<T3>()), (arg1, arg2, arg3))),
        };

    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is not positive or infinite.</exception>
    internal static void CheckTimeout(TimeSpan timeout, string name)
    {
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(name, timeout, $"{name} must be positive, Timeout.InfiniteTimeSpan, or null for none.");
        }
    }

    /// <summary>Each worker creates its own instance of the serializer's type: one it cannot create, or one whose state an
    /// instance made by its parameterless constructor lacks, is refused here rather than found out in every worker.</summary>
    private void CheckSerializer()
    {
        if (Serializer is not { } serializer)
        {
            return;
        }

        Type type = serializer.GetType();
        if (type == typeof(JsonPoolSerializer) && !((JsonPoolSerializer)serializer).HasDefaultOptions)
        {
            throw new ArgumentException(
                "Serializer is a JsonPoolSerializer made with your own JsonSerializerOptions, which the workers would not have: each worker " +
                "creates its own instance of the serializer's type with its parameterless constructor. Derive a class that passes the options to " +
                "the base constructor, e.g. `sealed class MySerializer() : JsonPoolSerializer(MyOptions.Create())`, and set an instance of it.",
                nameof(Serializer));
        }

        if (type.GetConstructor(Type.EmptyTypes) is not { } constructor)
        {
            throw new ArgumentException(
                $"Serializer is a {type.FullName}, which workers cannot create: each worker creates its own instance of the serializer's type, " +
                "so it needs a public parameterless constructor. Pass any settings it needs through that constructor.",
                nameof(Serializer));
        }

        if (type != typeof(MessagePackPoolSerializer) && type != typeof(JsonPoolSerializer))
        {
            try
            {
                // What every worker will do first: a constructor that throws would otherwise fail worker after worker.
                _ = constructor.Invoke(null);
            }
            catch (TargetInvocationException e)
            {
                throw new ArgumentException(
                    $"Serializer is a {type.FullName}, whose parameterless constructor threw {e.InnerException?.GetType().Name}: {e.InnerException?.Message} " +
                    "Each worker creates its own instance with that constructor, so it must succeed.",
                    nameof(Serializer),
                    e.InnerException);
            }
        }
    }

    /// <summary>The longest <see cref="StartTimeout"/>: what the runtime's timers can wait for.</summary>
    internal static readonly TimeSpan MaxStartTimeout = TimeSpan.FromDays(24);

    /// <summary>Checks the options; returns the worker count, or 0 when the launcher decides it (a Slurm allocation's tasks).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The options are invalid; the message says which and why.</exception>
    internal int ResolveWorkerCount()
    {
        if (StartTimeout <= TimeSpan.Zero || StartTimeout > MaxStartTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(StartTimeout), StartTimeout, $"StartTimeout must be positive and at most {MaxStartTimeout.TotalDays:0} days.");
        }

        ArgumentNullException.ThrowIfNull(WorkerEnvironment, nameof(WorkerEnvironment));
        foreach ((string name, string? value) in WorkerEnvironment)
        {
            if (name is null || name.Length == 0 || name.Contains('=') || name.Contains('\0'))
            {
                throw new ArgumentException(
                    $"WorkerEnvironment names a variable {(name is null ? "null" : $"\"{name}\"")}, which no process environment can hold: a name must be non-empty and contain neither '=' nor a NUL character.",
                    nameof(WorkerEnvironment));
            }

            if (value is not null && value.Contains('\0'))
            {
                throw new ArgumentException(
                    $"WorkerEnvironment gives the variable \"{name}\" a value with a NUL character, which no process environment can hold (the worker would see it cut there).",
                    nameof(WorkerEnvironment));
            }
        }

        if (TaskTimeout is { } timeout)
        {
            CheckTimeout(timeout, nameof(TaskTimeout));
        }

        if (CancellationGrace < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CancellationGrace), CancellationGrace, "CancellationGrace must not be negative.");
        }

        if (ProgressInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ProgressInterval), ProgressInterval, "ProgressInterval must not be negative.");
        }

        if (MaxTasksPerWorker is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTasksPerWorker), MaxTasksPerWorker, "MaxTasksPerWorker must be positive, or null for workers that live as long as the pool.");
        }

        if (MaxConcurrencyPerWorker is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrencyPerWorker), MaxConcurrencyPerWorker, "MaxConcurrencyPerWorker must be from 1 to 1024.");
        }

        CheckSerializer();
        if (InProcess && Launcher is not null)
        {
            throw new ArgumentException(
                "InProcess runs every task in this process, and Launcher says where worker processes run: set one or the other.", nameof(Launcher));
        }

        if (Launcher is SlurmLauncher slurm)
        {
            slurm.Validate();
            return Workers switch
            {
                null => 0,
                > 0 => Workers.Value,
                _ => throw new ArgumentOutOfRangeException(
                    nameof(Workers), Workers, $"Workers = {Workers} with a SlurmLauncher: use a positive count of workers across the allocation, or null for one per task of the allocation."),
            };
        }

        int cores = Environment.ProcessorCount;
        int workers = Workers ?? cores;
        int limit = MaxWorkersPerCore * cores;
        // InProcess runs one worker whatever the count, but a count that is wrong is said to be wrong either way.
        int resolved = workers switch
        {
            > 0 when workers > limit => throw new ArgumentOutOfRangeException(
                nameof(Workers), workers, $"Workers = {workers} is more than the limit of {limit} (ProcessPoolOptions.MaxWorkersPerCore = {MaxWorkersPerCore} per core, {cores} cores): each worker is a process; use at most {limit}."),
            > 0 => workers,
            0 => throw new ArgumentOutOfRangeException(nameof(Workers), workers, "Workers must not be 0: use a positive count, null for one per core, or -1 for all cores."),
            _ when workers >= -cores => cores + 1 + workers,
            _ => throw new ArgumentOutOfRangeException(
                nameof(Workers), workers, $"Workers = {workers} counts back past the {cores} cores of this machine: use -1 to -{cores}."),
        };
        return InProcess ? 1 : resolved;
    }
}
