using System.Diagnostics;

namespace Pool.Bench;

/// <summary>A figure's summary over its repetitions: the median, and the range it moved in.</summary>
internal readonly record struct Stats(double Median, double Min, double Max, int Reps)
{
    public static Stats Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("No values to summarize.", nameof(values));
        }

        double[] sorted = [.. values];
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
        return new Stats(median, sorted[0], sorted[^1], n);
    }

    public static Stats Of<T>(IReadOnlyCollection<T> samples, Func<T, double> value) => Of([.. samples.Select(value)]);
}

/// <summary>
/// The repetition scheme of every figure: a warm-up that is thrown away, then N measured runs. The warm-up
/// is one run, repeated until <see cref="WarmUp"/> has passed: a run of a few milliseconds would otherwise
/// be measured before the JIT has replaced its tier-0 code (it waits 100 ms after the last new method), in
/// this process and in the workers alike. A figure measured in turns with its reference (<see cref="Alternating"/>)
/// warms up with at least <see cref="MinWarmUpRuns"/> runs of each: W4's echo allocates 400 MiB of arrays a run, and
/// its first two or three runs grow the host's heap to the size it then runs at (166–346 ms a run, then 46–53 ms).
/// </summary>
internal static class Measure
{
    public static readonly TimeSpan WarmUp = TimeSpan.FromMilliseconds(300);

    public const int MinWarmUpRuns = 3;

    /// <summary>Warms up with <paramref name="sample"/>, then runs it <paramref name="reps"/> times and summarizes the values.</summary>
    public static Stats Repeat(int reps, Func<double> sample) => Stats.Of(Samples(reps, sample));

    /// <summary>Warms up with <paramref name="sample"/>, then runs it <paramref name="reps"/> times; returns the measured runs.</summary>
    /// <remarks>For figures measured in pairs in one repetition (serial and pool of W3), so that a ratio compares neighbours.</remarks>
    public static List<T> Samples<T>(int reps, Func<T> sample)
    {
        Warm(sample, runs: 1);

        var samples = new List<T>(reps);
        for (int i = 0; i < reps; i++)
        {
            samples.Add(sample());
        }

        return samples;
    }

    /// <summary>
    /// Warms up with both, then runs <paramref name="a"/> and <paramref name="b"/> in turn, <paramref name="reps"/>
    /// times each. A figure and its reference are measured this way, so that both see the same moments of a noisy
    /// machine and their ratio compares neighbours, not two stretches of time seconds apart.
    /// </summary>
    /// <param name="reps">Measured runs of each.</param>
    /// <param name="a">The figure.</param>
    /// <param name="b">Its reference.</param>
    /// <param name="warmUp">How long each warms up at least; <see cref="WarmUp"/> by default.</param>
    public static (Stats A, Stats B) Alternating(int reps, Func<double> a, Func<double> b, TimeSpan? warmUp = null)
    {
        Stats[] stats = AlternatingAll(reps, [a, b], warmUp);
        return (stats[0], stats[1]);
    }

    /// <summary>As <see cref="Alternating(int, Func{double}, Func{double}, TimeSpan?)"/>, for a figure and several references: each repetition runs all of them in turn.</summary>
    public static Stats[] AlternatingAll(int reps, Func<double>[] runs, TimeSpan? warmUp = null)
    {
        foreach (Func<double> run in runs)
        {
            Warm(run, MinWarmUpRuns, warmUp ?? WarmUp);
        }

        List<double>[] values = [.. runs.Select(_ => new List<double>(reps))];
        for (int i = 0; i < reps; i++)
        {
            for (int r = 0; r < runs.Length; r++)
            {
                values[r].Add(runs[r]());
            }
        }

        return [.. values.Select(Stats.Of)];
    }

    /// <summary>Runs <paramref name="sample"/> at least <paramref name="runs"/> times and for at least <paramref name="atLeast"/> (<see cref="WarmUp"/>).</summary>
    private static void Warm<T>(Func<T> sample, int runs, TimeSpan? atLeast = null)
    {
        long start = Stopwatch.GetTimestamp();
        for (int run = 0; run < runs || Stopwatch.GetElapsedTime(start) < (atLeast ?? WarmUp); run++)
        {
            _ = sample();
        }
    }

    /// <summary>Wall time of <paramref name="action"/>.</summary>
    public static TimeSpan Time(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>How long <see cref="Rate"/> repeats its action.</summary>
    public static readonly TimeSpan RateAtLeast = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Items per second for <paramref name="count"/> items done by <paramref name="action"/>, repeated until
    /// <see cref="RateAtLeast"/> has passed: one run of a millisecond (W1's 100,000 tiny tasks) would measure
    /// thread wake-ups on this VM more than throughput. The Python references use the same rule.
    /// </summary>
    public static double Rate(long count, Action action)
    {
        long runs = 0;
        long start = Stopwatch.GetTimestamp();
        TimeSpan elapsed;
        do
        {
            action();
            runs++;
            elapsed = Stopwatch.GetElapsedTime(start);
        }
        while (elapsed < RateAtLeast);

        return count * runs / elapsed.TotalSeconds;
    }
}
