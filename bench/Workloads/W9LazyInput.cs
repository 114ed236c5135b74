using System.Diagnostics;
using System.Globalization;

namespace Pool.Bench.Workloads;

/// <summary>
/// W9, lazy input: <c>ImapAsync</c> of <c>x + 1</c> over an endless <see cref="IAsyncEnumerable{T}"/>. The
/// consumer takes 1,000 results, then keeps consuming for 10 s (2 s under --quick), sampling once a second
/// the host's live GC heap (after a full collection) and working set, and how many inputs the pool has
/// pulled beyond the results consumed. Figures: growth over the baseline taken at the 1,000th result, and
/// inputs pulled ahead, each as median (min–max) over the one-second samples. One measurement, no warm-up
/// run: the first 1,000 results are the warm-up. Then it stops consuming and checks that the input stops.
/// </summary>
internal static class W9LazyInput
{
    private const string Id = "W9";
    private const int Baseline = 1_000;

    public static void Run(BenchContext context)
    {
        TimeSpan duration = TimeSpan.FromSeconds(context.Pick(10, 2));

        // Give back what earlier workloads left (W4's arrays), so that the working set starts from this one's own.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        using var pool = new ProcessPool(context.PoolOptions());
        var input = new EndlessInput();
        var samples = new List<Sample>();
        long consumed = 0;
        (long Heap, long WorkingSet) baseline = default;
        long sampling = 0;
        long next = 0;

        ConsumeAsync().GetAwaiter().GetResult();
        long pulledAtStop = input.Yielded;
        Thread.Sleep(500);
        long pulledLater = input.Yielded;

        context.Note(Id, string.Create(CultureInfo.InvariantCulture,
            $"{consumed:N0} results consumed in {duration.TotalSeconds:F0} s after the first {Baseline:N0}; {samples.Count} one-second samples"));
        context.Add(Id, "GC heap growth", Impls.ProcessPool, Units.MiB, Stats.Of(samples, s => s.HeapMiB));
        context.Add(Id, "working set growth", Impls.ProcessPool, Units.MiB, Stats.Of(samples, s => s.WorkingSetMiB));
        context.Add(Id, "inputs pulled beyond consumed", Impls.ProcessPool, Units.Items, Stats.Of(samples, s => s.Ahead));
        context.Add(Figure.Check(Id, "input stops when the consumer stops", pulledLater == pulledAtStop,
            pulledLater == pulledAtStop ? null : $"{pulledLater - pulledAtStop} more inputs were pulled in the 500 ms after the consumer stopped"));

        async Task ConsumeAsync()
        {
            await foreach (int result in pool.ImapAsync(Functions.Increment, input.Items()))
            {
                if (result != consumed + 1)
                {
                    throw new InvalidOperationException($"Result {consumed} was {result}, not {consumed + 1}.");
                }

                consumed++;
                if (consumed == Baseline)
                {
                    baseline = (GC.GetTotalMemory(forceFullCollection: true), Environment.WorkingSet);
                    sampling = Stopwatch.GetTimestamp();
                    next = sampling + Stopwatch.Frequency;
                }
                else if (consumed > Baseline && Stopwatch.GetTimestamp() >= next)
                {
                    samples.Add(new Sample(
                        (GC.GetTotalMemory(forceFullCollection: true) - baseline.Heap) / 1048576.0,
                        (Environment.WorkingSet - baseline.WorkingSet) / 1048576.0,
                        input.Yielded - consumed));
                    next += Stopwatch.Frequency;
                    if (Stopwatch.GetElapsedTime(sampling) >= duration)
                    {
                        break;
                    }
                }
            }
        }
    }

    private sealed record Sample(double HeapMiB, double WorkingSetMiB, long Ahead);

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
