namespace Pool.Bench;

/// <summary>What every workload gets: the run's options, the report to add figures to, and the pool size.</summary>
internal sealed class BenchContext(BenchOptions options, Report report)
{
    public BenchOptions Options => options;

    public Report Report => report;

    public int Reps => options.Reps;

    public bool Quick => options.Quick;

    /// <summary>Workers of the pools measured (and degree of parallelism of the floor): one per core.</summary>
    public int Workers { get; } = Environment.ProcessorCount;

    /// <summary>The full-run value, or the quick one under --quick.</summary>
    public T Pick<T>(T full, T quick) => options.Quick ? quick : full;

    /// <summary>Options for a pool of this bench: <see cref="Workers"/> workers, their output dropped unless asked.</summary>
    public ProcessPoolOptions PoolOptions(int? workers = null, bool keepOutput = false) => new()
    {
        Workers = workers ?? Workers,
        WorkerOutput = keepOutput ? null : static _ => { },
    };

    public void Add(Figure figure) => report.Add(figure);

    public void Add(string workload, string variant, string impl, string unit, Stats stats, string? note = null) =>
        report.Add(new Figure(workload, variant, impl, unit, stats, note));

    public void Note(string workload, string text) => report.Note(workload, text);
}
