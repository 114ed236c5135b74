namespace Pool.Bench.Workloads;

/// <summary>
/// W11, records: <c>Map</c> over 100,000 small records (an <c>int</c>, a <c>double</c>, a <c>string</c>) returning a
/// record, in tasks/s, and 10,000 sequential <c>Apply</c> with a record argument (1,000 under --quick), in µs per call.
/// The default serializer (MessagePack) and <see cref="JsonPoolSerializer"/> are measured in turn, repetition by
/// repetition (<see cref="Measure.AlternatingAll"/>), each on its own warmed pool, with a plain loop in the host building the same
/// results (<c>Array.ConvertAll</c>, one thread): most of a map's time in the host is allocating and keeping 100,000 result
/// objects, which every serializer pays. mp.Pool (pickle) is the Python reference.
/// </summary>
internal static class W11Records
{
    private const string Id = "W11";

    public static void Run(BenchContext context)
    {
        Sample[] samples = [.. Enumerable.Range(0, 100_000).Select(Sample.Of)];
        int calls = context.Pick(10_000, 1_000);
        context.Note(Id, $"{samples.Length:N0} records per map; {calls:N0} calls per Apply repetition; ProcessPool is MessagePack (the default), JsonPoolSerializer a pool of its own");

        using var messagePack = new ProcessPool(context.PoolOptions());
        using var json = new ProcessPool(context.PoolOptions() with { Serializer = new JsonPoolSerializer() });
        Check(messagePack.Map(Functions.Score, samples));
        Check(json.Map(Functions.Score, samples));

        Stats[] maps = Measure.AlternatingAll(
            context.Reps,
            [
                () => Measure.Rate(samples.Length, () => messagePack.Map(Functions.Score, samples)),
                () => Measure.Rate(samples.Length, () => json.Map(Functions.Score, samples)),
                () => Measure.Rate(samples.Length, () => Array.ConvertAll(samples, Functions.Score)),
            ]);
        context.Add(Id, "Map, records", Impls.ProcessPool, Units.TasksPerSecond, maps[0], "MessagePack");
        context.Add(Id, "Map, records", Impls.Json, Units.TasksPerSecond, maps[1]);
        context.Add(Id, "Map, records", Impls.Serial, Units.TasksPerSecond, maps[2], "a plain loop in the host building the same 100,000 results: what keeping them costs");

        (Stats packed, Stats text) = Measure.Alternating(context.Reps, () => Calls(messagePack, samples, calls), () => Calls(json, samples, calls));
        context.Add(Id, "sequential Apply, record", Impls.ProcessPool, Units.Microseconds, packed, "MessagePack");
        context.Add(Id, "sequential Apply, record", Impls.Json, Units.Microseconds, text);
    }

    private static double Calls(ProcessPool pool, Sample[] samples, int calls)
    {
        TimeSpan elapsed = Measure.Time(() =>
        {
            for (int i = 0; i < calls; i++)
            {
                if (pool.Apply(Functions.Score, samples[i]).Id != i)
                {
                    throw new InvalidOperationException($"Apply returned a wrong record for {i}.");
                }
            }
        });
        return elapsed.TotalMicroseconds / calls;
    }

    private static void Check(Scored[] results)
    {
        for (int i = 0; i < results.Length; i++)
        {
            if (results[i] != Functions.Score(Sample.Of(i)))
            {
                throw new InvalidOperationException($"Map returned {results[i]} at {i}.");
            }
        }
    }
}
