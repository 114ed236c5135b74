using Pool.Bench.References;

namespace Pool.Bench.Workloads;

/// <summary>
/// W2, round trip: 10,000 sequential <c>Apply</c> calls, each awaited before the next, in µs per call.
/// Reference: a 16-byte ping-pong over a raw named pipe to a child process, measured in turn with the pool;
/// and the machine's own cost of waking another thread: a ping-pong between two threads of this process
/// (two hand-offs a round), so that a reader sees how many hand-offs a round trip of the pool costs.
/// </summary>
internal static class W2RoundTrip
{
    private const string Id = "W2";
    private const string Variant = "sequential Apply";

    public static void Run(BenchContext context)
    {
        int calls = context.Pick(10_000, 1_000);
        context.Note(Id, $"{calls:N0} calls per repetition");

        using var pool = new ProcessPool(context.PoolOptions());
        using RawPipe pipe = RawPipe.Start();
        (Stats pooled, Stats raw) = Measure.Alternating(context.Reps, () => Calls(pool, calls), () => pipe.PingPong(calls));
        context.Add(Id, Variant, Impls.ProcessPool, Units.Microseconds, pooled);
        context.Add(Id, Variant, Impls.RawPipe, Units.Microseconds, raw, "16-byte ping-pong");
        context.Add(Id, Variant, Impls.ThreadHandOff, Units.Microseconds, Measure.Repeat(context.Reps, () => ThreadPingPong(calls)),
            "two threads of one process, two hand-offs a round");
    }

    /// <summary>µs per round of a ping-pong between this thread and another, each waking the other with a <see cref="SemaphoreSlim"/>, as the pool's threads do.</summary>
    private static double ThreadPingPong(int rounds)
    {
        using var ping = new SemaphoreSlim(0);
        using var pong = new SemaphoreSlim(0);
        var other = new Thread(() =>
        {
            for (int i = 0; i < rounds; i++)
            {
                ping.Wait();
                pong.Release();
            }
        }) { IsBackground = true, Name = "bench-pong" };
        other.Start();
        TimeSpan elapsed = Measure.Time(() =>
        {
            for (int i = 0; i < rounds; i++)
            {
                ping.Release();
                pong.Wait();
            }
        });
        other.Join();
        return elapsed.TotalMicroseconds / rounds;
    }

    private static double Calls(ProcessPool pool, int calls)
    {
        TimeSpan elapsed = Measure.Time(() =>
        {
            for (int i = 0; i < calls; i++)
            {
                if (pool.Apply(Functions.Increment, i) != i + 1)
                {
                    throw new InvalidOperationException($"Apply returned a wrong result for {i}.");
                }
            }
        });
        return elapsed.TotalMicroseconds / calls;
    }
}
