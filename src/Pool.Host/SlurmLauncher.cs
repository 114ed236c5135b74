namespace Pool;

/// <summary>
/// Where a pool's workers run. Set <see cref="ProcessPoolOptions.Launcher"/> to one; null (the default) starts
/// them as child processes of this one, on this machine. The only other launcher is <see cref="SlurmLauncher"/>.
/// </summary>
public abstract record WorkerLauncher
{
    // Only this library's launchers: a pool relies on what each one guarantees (no worker outlives the pool).
    private protected WorkerLauncher()
    {
    }
}

/// <summary>
/// Runs the pool's workers on the nodes of a Slurm allocation, as job steps (<c>srun</c>), each connecting back to
/// this process over TCP with TLS. Inside an allocation (this process runs under <c>sbatch</c> or <c>salloc</c>,
/// so <c>SLURM_JOB_ID</c> is set) the workers use it; otherwise the pool asks Slurm for one with <c>sbatch</c>
/// and releases it with <c>scancel</c> when the pool ends, or when this process dies. The nodes must see the
/// application's build at the same path (a shared filesystem) and reach this machine's <see cref="HostAddress"/>.
/// <see cref="ProcessPoolOptions.Workers"/> counts workers across the allocation; null is
/// <see cref="Nodes"/> × <see cref="WorkersPerNode"/> (or the allocation's task count inside one).
/// Python: dask-jobqueue's <c>SLURMCluster</c>.
/// </summary>
public sealed record SlurmLauncher : WorkerLauncher
{
    /// <summary>
    /// How many nodes to allocate (<c>sbatch --nodes</c>). Null: 1. Inside an allocation the pool uses all of its nodes,
    /// and <see cref="Nodes"/>, <see cref="WorkersPerNode"/>, <see cref="Partition"/>, <see cref="TimeLimit"/>,
    /// <see cref="Account"/> and <see cref="SbatchArguments"/> do not apply (set <see cref="ProcessPoolOptions.Workers"/>
    /// to use fewer workers than its tasks).
    /// </summary>
    public int? Nodes { get; init; }

    /// <summary>Workers per node (<c>--ntasks-per-node</c>). Null: 1 per allocated CPU, over <see cref="CpusPerWorker"/>.</summary>
    public int? WorkersPerNode { get; init; }

    /// <summary>CPUs each worker gets (<c>--cpus-per-task</c>). Default: 1.</summary>
    public int CpusPerWorker { get; init; } = 1;

    /// <summary>The partition (<c>--partition</c>). Null: the cluster's default.</summary>
    public string? Partition { get; init; }

    /// <summary>The allocation's time limit (<c>--time</c>). Null: the partition's default.</summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>The account charged (<c>--account</c>). Null: the user's default.</summary>
    public string? Account { get; init; }

    /// <summary>More arguments for <c>sbatch</c> when the pool asks for the allocation (for example <c>--qos=short</c>).</summary>
    public IReadOnlyList<string> SbatchArguments { get; init; } = [];

    /// <summary>More arguments for each worker's <c>srun</c> (for example <c>--mem-per-cpu=2G</c>).</summary>
    public IReadOnlyList<string> SrunArguments { get; init; } = [];

    /// <summary>
    /// The address of this machine that the nodes connect to; the pool listens on it. Null: the address this machine
    /// uses to reach the first node of the allocation.
    /// </summary>
    public string? HostAddress { get; init; }

    /// <summary>The values each option can take, checked when the pool is created.</summary>
    internal void Validate()
    {
        if (Nodes is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Nodes), Nodes, "SlurmLauncher.Nodes must be at least 1, or null for one node (or the allocation's own).");
        }

        if (WorkersPerNode is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WorkersPerNode), WorkersPerNode, "SlurmLauncher.WorkersPerNode must be at least 1, or null for one per allocated CPU.");
        }

        if (CpusPerWorker < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(CpusPerWorker), CpusPerWorker, "SlurmLauncher.CpusPerWorker must be at least 1.");
        }

        if (TimeLimit is { } limit && limit < TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(TimeLimit), TimeLimit, "SlurmLauncher.TimeLimit must be at least a minute (Slurm counts it in minutes), or null for the partition's default.");
        }

        CheckName(Partition, nameof(Partition));
        CheckName(Account, nameof(Account));
        ArgumentNullException.ThrowIfNull(SbatchArguments, nameof(SbatchArguments));
        ArgumentNullException.ThrowIfNull(SrunArguments, nameof(SrunArguments));
        if (HostAddress is { } address && !System.Net.IPAddress.TryParse(address, out _))
        {
            throw new ArgumentException(
                $"SlurmLauncher.HostAddress \"{address}\" is not an IP address: give the address of this machine that the nodes reach (for example 10.1.2.3), or null to find it.",
                nameof(HostAddress));
        }
    }

    /// <summary>A partition or account is one word to sbatch: empty, blank or with spaces or line breaks it would be misread.</summary>
    private static void CheckName(string? name, string option)
    {
        if (name is not null && (name.Length == 0 || name.Any(char.IsWhiteSpace) || name.Contains('\0')))
        {
            throw new ArgumentException(
                $"SlurmLauncher.{option} \"{name}\" is not a Slurm name: give one word without spaces or line breaks (as `sinfo` or `sacctmgr` shows it), or null for the default.",
                option);
        }
    }
}
