using System.Globalization;

namespace Pool.Bench.Workloads;

/// <summary>
/// W3, CPU-bound: 64 Monte Carlo π tasks (<see cref="Functions.McPi"/>), serial against the pool and against
/// the Parallel.For floor; speed-up over serial and efficiency (speed-up / workers). The C# task runs more
/// samples than CPython's 200,000 so that it takes about 50 ms (10 ms under --quick), as CPython's does.
/// Serial, pool and floor are measured one after the other in each repetition, and each ratio is taken
/// within its repetition.
/// </summary>
internal static class W3CpuBound
{
    private const string Id = "W3";
    private const int Tasks = 64;
    private const int CheckSamples = 200_000;

    public static void Run(BenchContext context)
    {
        CheckValues();
        int samples = Calibrate(TimeSpan.FromMilliseconds(context.Pick(50, 10)));
        string taskSize = string.Create(CultureInfo.InvariantCulture, $"C# task = {samples:N0} samples");
        context.Note(Id, $"{taskSize} (about {context.Pick(50, 10)} ms here); check values for 200,000 samples hold");

        int[] seeds = [.. Enumerable.Range(1, Tasks)];
        int[] counts = [.. Enumerable.Repeat(samples, Tasks)];
        using var pool = new ProcessPool(context.PoolOptions());
        var reps = Measure.Samples(context.Reps, () =>
        {
            long serialSum = 0;
            TimeSpan serial = Measure.Time(() =>
            {
                foreach (int seed in seeds)
                {
                    serialSum += Functions.McPi(seed, samples);
                }
            });
            long[] inPool = [];
            TimeSpan pooled = Measure.Time(() => inPool = pool.Map(Functions.McPi, seeds, counts));
            TimeSpan floor = Measure.Time(() => Floor(seeds, samples, context.Workers));
            if (inPool.Sum() != serialSum)
            {
                throw new InvalidOperationException($"The pool counted {inPool.Sum()} inside, the serial loop {serialSum}.");
            }

            return (Serial: serial.TotalMilliseconds, Pool: pooled.TotalMilliseconds, Floor: floor.TotalMilliseconds);
        });

        const string Wall = "64 tasks, wall";
        context.Add(Id, Wall, Impls.ProcessPool, Units.Milliseconds, Stats.Of(reps, r => r.Pool), taskSize);
        context.Add(Id, Wall, Impls.Serial, Units.Milliseconds, Stats.Of(reps, r => r.Serial), taskSize);
        context.Add(Id, Wall, Impls.Floor, Units.Milliseconds, Stats.Of(reps, r => r.Floor), taskSize);
        context.Add(Id, "speed-up vs serial", Impls.ProcessPool, Units.SpeedUp, Stats.Of(reps, r => r.Serial / r.Pool), taskSize);
        context.Add(Id, "speed-up vs serial", Impls.Floor, Units.SpeedUp, Stats.Of(reps, r => r.Serial / r.Floor), taskSize);
        context.Add(Id, "efficiency", Impls.ProcessPool, Units.Percent, Stats.Of(reps, r => 100 * r.Serial / r.Pool / context.Workers), taskSize);
        context.Add(Id, "efficiency", Impls.Floor, Units.Percent, Stats.Of(reps, r => 100 * r.Serial / r.Floor / context.Workers), taskSize);
    }

    /// <summary>The check values of shared/WORKLOADS.md: seed 1 gives 156,769; seeds 1..64 sum to 10,051,617.</summary>
    private static void CheckValues()
    {
        long one = Functions.McPi(1, CheckSamples);
        long sum = Enumerable.Range(1, Tasks).Sum(seed => Functions.McPi(seed, CheckSamples));
        if (one != 156_769 || sum != 10_051_617)
        {
            throw new InvalidOperationException($"mc_pi check values differ: seed 1 gave {one} (want 156,769), the sum {sum} (want 10,051,617).");
        }
    }

    /// <summary>The sample count that makes one task take about <paramref name="target"/> on this machine, to two significant digits.</summary>
    private static int Calibrate(TimeSpan target)
    {
        const int Probe = 2_000_000;
        for (int i = 0; i < 3; i++)
        {
            _ = Functions.McPi(i + 1, Probe); // reach the optimized code first
        }

        double perSample = Stats.Of([.. Enumerable.Range(0, 5).Select(i => Measure.Time(() => Functions.McPi(i + 1, Probe)).TotalSeconds / Probe)]).Median;
        double wanted = target.TotalSeconds / perSample;
        double unit = Math.Pow(10, Math.Floor(Math.Log10(wanted)) - 1);
        return (int)Math.Clamp(Math.Round(wanted / unit) * unit, CheckSamples, int.MaxValue);
    }

    private static long[] Floor(int[] seeds, int samples, int workers)
    {
        long[] counts = new long[seeds.Length];
        Parallel.For(0, seeds.Length, new ParallelOptions { MaxDegreeOfParallelism = workers }, i => counts[i] = Functions.McPi(seeds[i], samples));
        return counts;
    }
}
