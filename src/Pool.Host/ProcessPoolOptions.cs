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
    /// Python: <c>Pool(processes)</c>.
    /// </summary>
    public int? Workers { get; init; }

    /// <summary>
    /// Runs every task in this process, one at a time, on a thread of the pool, with no worker process: for
    /// stepping through the function in a debugger, as joblib's <c>n_jobs=1</c>. Values still go through the
    /// serializer and the protocol, so what works here works in workers. A crash in the function is then a
    /// crash of the application. Default: false.
    /// </summary>
    public bool InProcess { get; init; }

    /// <summary>The serializer for arguments and results. Default: <see cref="PoolSerializer.Default"/>.</summary>
    public PoolSerializer? Serializer { get; init; }

    /// <summary>How long a worker may take from launch to ready. Default: 30 seconds.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Receives each line the workers write to stdout or stderr. Default (null): the line goes to this
    /// process's stderr as <c>[worker 2#12345] text</c>. Called on a thread-pool thread.
    /// </summary>
    public Action<WorkerOutputLine>? WorkerOutput { get; init; }

    /// <summary>Environment variables to set (or, with a null value, remove) in every worker. Default: none.</summary>
    public IReadOnlyDictionary<string, string?> WorkerEnvironment { get; init; } = new Dictionary<string, string?>();

    /// <summary>The number of workers these options ask for.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The options are invalid; the message says which and why.</exception>
    internal int ResolveWorkerCount()
    {
        if (StartTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(StartTimeout), StartTimeout, "StartTimeout must be positive.");
        }

        ArgumentNullException.ThrowIfNull(WorkerEnvironment, nameof(WorkerEnvironment));
        if (InProcess)
        {
            return 1;
        }

        int cores = Environment.ProcessorCount;
        int workers = Workers ?? cores;
        return workers switch
        {
            > 0 => workers,
            0 => throw new ArgumentOutOfRangeException(nameof(Workers), workers, "Workers must not be 0: use a positive count, null for one per core, or -1 for all cores."),
            _ when workers >= -cores => cores + 1 + workers,
            _ => throw new ArgumentOutOfRangeException(
                nameof(Workers), workers, $"Workers = {workers} counts back past the {cores} cores of this machine: use -1 to -{cores}."),
        };
    }
}
