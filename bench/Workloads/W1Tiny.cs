namespace Pool.Bench.Workloads;

/// <summary>
/// W1, tiny tasks: <c>x + 1</c> over 100,000 ints with <c>Map</c>, default chunking and chunk size 1, in
/// tasks/s. Floor: Parallel.For over the same inputs with the same degree of parallelism, measured in turn with
/// the pool (<see cref="Measure.Alternating"/>). Each repetition repeats the map for at least 200 ms
/// (<see cref="Measure.Rate"/>).
/// </summary>
internal static class W1Tiny
{
    private const string Id = "W1";

    public static void Run(BenchContext context)
    {
        int[] inputs = [.. Enumerable.Range(0, 100_000)];
        int[] fewer = [.. Enumerable.Range(0, context.Pick(100_000, 10_000))];
        if (fewer.Length != inputs.Length)
        {
            context.Note(Id, $"chunk size 1 over {fewer.Length:N0} items (--quick)");
        }

        using var pool = new ProcessPool(context.PoolOptions());
        CheckResults(pool.Map(Functions.Increment, inputs));

        (Stats pooled, Stats floor) = Measure.Alternating(
            context.Reps,
            () => Measure.Rate(inputs.Length, () => pool.Map(Functions.Increment, inputs)),
            () => Measure.Rate(inputs.Length, () => Floor(inputs, context.Workers)));
        context.Add(Id, "default chunks", Impls.ProcessPool, Units.TasksPerSecond, pooled);
        context.Add(Id, "default chunks", Impls.Floor, Units.TasksPerSecond, floor);

        (pooled, floor) = Measure.Alternating(
            context.Reps,
            () => Measure.Rate(fewer.Length, () => pool.Map(Functions.Increment, fewer, chunkSize: 1)),
            () => Measure.Rate(fewer.Length, () => Floor(fewer, context.Workers)));
        context.Add(Id, "chunk size 1", Impls.ProcessPool, Units.TasksPerSecond, pooled);
        context.Add(Id, "chunk size 1", Impls.Floor, Units.TasksPerSecond, floor);
    }

    /// <summary>The same function over the same inputs in this process, on <paramref name="workers"/> threads.</summary>
    private static int[] Floor(int[] inputs, int workers)
    {
        int[] results = new int[inputs.Length];
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = workers }, i => results[i] = Functions.Increment(inputs[i]));
        return results;
    }

    private static void CheckResults(int[] results)
    {
        for (int i = 0; i < results.Length; i++)
        {
            if (results[i] != i + 1)
            {
                throw new InvalidOperationException($"Map returned {results[i]} at {i}, not {i + 1}.");
            }
        }
    }
}
