using System.Diagnostics;
using System.Globalization;

namespace Pool.Bench.Workloads;

/// <summary>
/// W9, lazy input: <c>ImapAsync</c> of <c>x + 1</c> over an endless <see cref="IAsyncEnumerable{T}"/>. The pool
/// is started and warmed by a trivial <c>Map</c>; then the consumer takes 1,000 results and keeps consuming
/// for 10 s (3 s under --quick), sampling once a second the host's live GC heap (after a full collection),
/// its working set, and how many inputs the pool has pulled beyond the results consumed. Then it pauses, holding
/// the enumerator without asking for more, for as long, sampled in the same way; then it disposes the
/// enumerator and checks that the input stops. One measurement, no warm-up run: the first 1,000 results are
/// the warm-up.
/// </summary>
/// <remarks>
/// Figures (MiB are 2^20 bytes):
/// <list type="bullet">
/// <item><description>working set growth to result 1,000: from before the <c>ImapAsync</c> starts to the 1,000th
/// result, the literal "while taking 1,000 results" reading; one value.</description></item>
/// <item><description>GC heap growth, working set growth: over the baseline taken at the 1,000th result, median
/// (min–max) of the one-second samples while consuming. The working set makes a one-time step of about 25 MiB
/// in the first one to three seconds, as the rate of results climbs (the runtime commits its gen0 allocation
/// budget; the JIT), then stays flat: a step, not growth with the number of items. The GC gives most of it back
/// within seconds once the consumer pauses.</description></item>
/// <item><description>working set growth rate, 2nd half: the least-squares slope, in MiB/s, of the working set over
/// the samples of the second half of the consuming period (5 to 10 s after the baseline; 2 and 3 s under --quick),
/// so without the step, which took from 1 to 3 s on a loaded 2-core machine: the rate that grows with the number
/// of items; one value.</description></item>
/// <item><description>inputs pulled beyond consumed: median (min–max) of the samples while consuming.</description></item>
/// <item><description>paused: working set growth rate, paused: inputs beyond consumed: the same two figures while
/// the consumer holds the enumerator and takes nothing (the rate over all the pause's samples; the working set
/// from the pause's start). This is the spec's "the consumer takes 1,000 results and stops", and where a pool
/// that reads its input without bound grows: mp.Pool's imap keeps pulling inputs and buffering results after its
/// consumer stops, while consuming at full speed it stays flat.</description></item>
/// </list>
/// bench/python/w9_lazy.py takes the same figures for mp.Pool's imap and imap_unordered, with the parent's RSS as
/// the working set.
/// </remarks>
internal static class W9LazyInput
{
    private const string Id = "W9";
    private const int Baseline = 1_000;

    public static void Run(BenchContext context)
    {
        TimeSpan duration = TimeSpan.FromSeconds(context.Pick(10, 3));

        // Give back what earlier workloads left (W4's arrays), so that the working set starts from this one's own.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        using var pool = new ProcessPool(context.PoolOptions());
        _ = pool.Map(Functions.Increment, Enumerable.Range(0, 16));
        _ = GC.GetTotalMemory(forceFullCollection: true);
        long start = Environment.WorkingSet;

        var input = new EndlessInput();
        var samples = new List<Sample>();
        var paused = new List<Sample>();
        long consumed = 0;
        long baselineWorkingSet = 0;

        ConsumeAsync().GetAwaiter().GetResult();
        long pulledAtStop = input.Yielded;
        Thread.Sleep(500);
        long pulledLater = input.Yielded;

        context.Note(Id, string.Create(CultureInfo.InvariantCulture,
            $"{consumed:N0} results consumed in {duration.TotalSeconds:F0} s after the first {Baseline:N0}, then paused for {duration.TotalSeconds:F0} s; {samples.Count} + {paused.Count} one-second samples"));
        context.Note(Id, "working set over the baseline at the 1,000th result: " + Series(samples) + "; paused, over the pause's start: " + Series(paused));
        context.Add(Id, "working set growth to result 1,000", Impls.ProcessPool, Units.MiB, One((baselineWorkingSet - start) / 1048576.0));
        context.Add(Id, "GC heap growth", Impls.ProcessPool, Units.MiB, Stats.Of(samples, s => s.HeapMiB));
        context.Add(Id, "working set growth", Impls.ProcessPool, Units.MiB, Stats.Of(samples, s => s.WorkingSetMiB));
        context.Add(Rate("working set growth rate, 2nd half", [.. samples.Where(s => s.Seconds >= duration.TotalSeconds / 2)]));
        context.Add(Id, "inputs pulled beyond consumed", Impls.ProcessPool, Units.Items, Stats.Of(samples, s => s.Ahead));
        context.Add(Rate("paused: working set growth rate", [.. paused]));
        context.Add(Id, "paused: inputs beyond consumed", Impls.ProcessPool, Units.Items, Stats.Of(paused, s => s.Ahead));
        context.Add(Figure.Check(Id, "input stops when the consumer stops", pulledLater == pulledAtStop,
            pulledLater == pulledAtStop ? null : $"{pulledLater - pulledAtStop} more inputs were pulled in the 500 ms after the consumer stopped"));

        async Task ConsumeAsync()
        {
            await using IAsyncEnumerator<int> results = pool.ImapAsync(Functions.Increment, input.Items()).GetAsyncEnumerator();
            (long Heap, long WorkingSet, long Timestamp) baseline = default;
            long next = 0;
            while (await results.MoveNextAsync())
            {
                if (results.Current != consumed + 1)
                {
                    throw new InvalidOperationException($"Result {consumed} was {results.Current}, not {consumed + 1}.");
                }

                consumed++;
                if (consumed == Baseline)
                {
                    baseline = Take();
                    baselineWorkingSet = baseline.WorkingSet;
                    next = baseline.Timestamp + Stopwatch.Frequency;
                }
                else if (consumed > Baseline && Stopwatch.GetTimestamp() >= next)
                {
                    samples.Add(SampleOver(baseline));
                    next += Stopwatch.Frequency;
                    if (Stopwatch.GetElapsedTime(baseline.Timestamp) >= duration)
                    {
                        break;
                    }
                }
            }

            // The consumer stops asking but keeps the enumerator: the pool may fill its window, and no more.
            (long Heap, long WorkingSet, long Timestamp) pause = Take();
            for (int second = 1; second <= (int)duration.TotalSeconds; second++)
            {
                TimeSpan wait = TimeSpan.FromSeconds(second) - Stopwatch.GetElapsedTime(pause.Timestamp);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }

                paused.Add(SampleOver(pause));
            }
        }

        Sample SampleOver((long Heap, long WorkingSet, long Timestamp) reference) => new(
            Stopwatch.GetElapsedTime(reference.Timestamp).TotalSeconds,
            (GC.GetTotalMemory(forceFullCollection: true) - reference.Heap) / 1048576.0,
            (Environment.WorkingSet - reference.WorkingSet) / 1048576.0,
            input.Yielded - consumed);
    }

    /// <summary>The live GC heap (after a full collection), the working set, and the time.</summary>
    private static (long Heap, long WorkingSet, long Timestamp) Take() =>
        (GC.GetTotalMemory(forceFullCollection: true), Environment.WorkingSet, Stopwatch.GetTimestamp());

    /// <summary>The least-squares slope of the working set over <paramref name="points"/>, or a skipped figure below two points.</summary>
    private static Figure Rate(string variant, Sample[] points)
    {
        if (points.Length < 2)
        {
            return Figure.Skipped(Id, variant, Impls.ProcessPool, Units.MiBPerSecond, $"{points.Length} samples, 2 needed");
        }

        double meanX = points.Average(p => p.Seconds);
        double meanY = points.Average(p => p.WorkingSetMiB);
        double covariance = points.Sum(p => (p.Seconds - meanX) * (p.WorkingSetMiB - meanY));
        double variance = points.Sum(p => (p.Seconds - meanX) * (p.Seconds - meanX));
        return new Figure(Id, variant, Impls.ProcessPool, Units.MiBPerSecond, One(covariance / variance),
            $"least-squares slope over {points.Length} samples");
    }

    /// <summary>A figure taken once: its median, min and max are the value.</summary>
    private static Stats One(double value) => new(value, value, value, 1);

    private static string Series(List<Sample> samples) => string.Join(", ", samples.Select(s =>
        string.Create(CultureInfo.InvariantCulture, $"{s.Seconds:F0} s {s.WorkingSetMiB:+0.0;-0.0;0.0} MiB")));

    /// <param name="Seconds">Time since the reference (the 1,000th result, or the pause's start).</param>
    /// <param name="HeapMiB">Live GC heap over the reference, after a full collection.</param>
    /// <param name="WorkingSetMiB">Working set over the reference.</param>
    /// <param name="Ahead">Inputs pulled beyond the results consumed.</param>
    private sealed record Sample(double Seconds, double HeapMiB, double WorkingSetMiB, long Ahead);

    /// <summary>0, 1, 2, ... for ever, counting what the pool has pulled.</summary>
    private sealed class EndlessInput
    {
        private long _yielded;

        public long Yielded => Interlocked.Read(ref _yielded);

        public async IAsyncEnumerable<int> Items()
        {
            for (int i = 0; ; i++)
            {
                Interlocked.Increment(ref _yielded);
                yield return i;
            }
        }
    }
}
