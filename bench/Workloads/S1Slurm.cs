namespace Pool.Bench.Workloads;

/// <summary>
/// S1, only with <c>--slurm</c>: the pool with its workers on the nodes of a Slurm allocation it asks for
/// (<see cref="SlurmLauncher"/>, 2 nodes, one worker each), against a local pool of 2 workers, measured in turn:
/// from construction to the first result (the allocation, the node check, the steps, the TLS links); W1's tiny
/// tasks; W2's sequential Apply; W3's 64 Monte Carlo tasks of about 50 ms.
/// </summary>
internal static class S1Slurm
{
    public const string Id = "S1";
    private const int Workers = 2;

    public static void Run(BenchContext context)
    {
        ProcessPoolOptions local = context.PoolOptions(Workers);
        ProcessPoolOptions slurm = local with { Launcher = new SlurmLauncher { Nodes = 2, WorkersPerNode = 1 } };
        context.Note(Id, "2 workers each: on 2 Slurm nodes (one each, TLS over TCP), and on this machine (Unix sockets)");

        (Stats slurmStart, Stats localStart) = Measure.Alternating(context.Reps, () => FirstResult(slurm), () => FirstResult(local), TimeSpan.Zero);
        context.Add(Id, "construct → first result", Impls.ProcessPool, Units.Milliseconds, slurmStart, "allocation included");
        context.Add(Id, "construct → first result", Impls.Local, Units.Milliseconds, localStart);

        using var onNodes = new ProcessPool(slurm);
        using var here = new ProcessPool(local);
        int items = context.Pick(100_000, 10_000);
        int[] inputs = [.. Enumerable.Range(0, items)];
        (Stats w1Slurm, Stats w1Local) = Measure.Alternating(
            context.Reps, () => Measure.Rate(items, () => onNodes.Map(Functions.Increment, inputs)), () => Measure.Rate(items, () => here.Map(Functions.Increment, inputs)));
        context.Add(Id, "W1 default chunks", Impls.ProcessPool, Units.TasksPerSecond, w1Slurm);
        context.Add(Id, "W1 default chunks", Impls.Local, Units.TasksPerSecond, w1Local);

        int calls = context.Pick(2_000, 200);
        (Stats w2Slurm, Stats w2Local) = Measure.Alternating(context.Reps, () => Apply(onNodes, calls), () => Apply(here, calls));
        context.Add(Id, "W2 sequential Apply", Impls.ProcessPool, Units.Microseconds, w2Slurm);
        context.Add(Id, "W2 sequential Apply", Impls.Local, Units.Microseconds, w2Local);

        int samples = 9_500_000;
        int tasks = context.Pick(64, 16);
        int[] seeds = [.. Enumerable.Range(1, tasks)];
        int[] counts = [.. Enumerable.Repeat(samples, tasks)];
        (Stats w3Slurm, Stats w3Local) = Measure.Alternating(
            context.Reps,
            () => Measure.Time(() => onNodes.Map(Functions.McPi, seeds, counts)).TotalMilliseconds,
            () => Measure.Time(() => here.Map(Functions.McPi, seeds, counts)).TotalMilliseconds);
        context.Add(Id, $"W3 {tasks} tasks, wall", Impls.ProcessPool, Units.Milliseconds, w3Slurm);
        context.Add(Id, $"W3 {tasks} tasks, wall", Impls.Local, Units.Milliseconds, w3Local);
    }

    private static double FirstResult(ProcessPoolOptions options)
    {
        ProcessPool? pool = null;
        try
        {
            return Measure.Time(() =>
            {
                pool = new ProcessPool(options);
                _ = pool.Apply(Functions.Increment, 1);
            }).TotalMilliseconds;
        }
        finally
        {
            pool?.Dispose();
        }
    }

    private static double Apply(ProcessPool pool, int calls) => Measure.Time(() =>
    {
        for (int i = 0; i < calls; i++)
        {
            _ = pool.Apply(Functions.Increment, i);
        }
    }).TotalMicroseconds / calls;
}
