using Pool.Bench.References;

namespace Pool.Bench.Workloads;

/// <summary>
/// W4, payload: 200 tasks (50 under --quick), each argument a 1 MiB <c>byte[]</c> or <c>double[]</c>; the
/// function returns its length (one way) or the array itself (echo). MB/s (10^6 bytes) of payload moved
/// across the process boundary: an echo moves each array twice and counts both. Reference: the same bytes
/// streamed over a raw named pipe to a child that acknowledges or echoes them, measured in turn with the pool. An echo
/// has a second reference: the raw pipe reading each echo into a new array and keeping them all, as a <c>Map</c>'s
/// caller gets them (the first reads every echo into one reused buffer, which no caller of <c>Map</c> can have).
/// </summary>
internal static class W4Payload
{
    private const string Id = "W4";
    private const int Size = 1 << 20;

    /// <summary>
    /// Each variant and its reference warm up this long (under --quick, the usual 300 ms): the first 10–20 runs of a
    /// variant (2–4 GiB through the workers) are up to 3× slower than the ones after, while each worker's GC settles
    /// its generation budgets for a stream of 1 MiB arrays (harness: 50–200 ms a run, then 25–45 ms).
    /// </summary>
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1.5);

    /// <summary>
    /// A run is short (20–60 ms) and this machine's moments vary more than that: the raw pipe alone ranged
    /// 6–12 GB/s within one run of the bench, so with five runs a ratio could move by half from one run of the
    /// bench to the next. W4 takes this many times the repetitions (a second or so more per variant).
    /// </summary>
    private const int RepsFactor = 5;

    public static void Run(BenchContext context)
    {
        int count = context.Pick(200, 50);
        context.Note(Id, $"{count} arrays of 1 MiB per repetition, {context.Pick(context.Reps * RepsFactor, context.Reps)} repetitions");

        // One array, sent many times: the pool serializes each item as it goes, so this is what the wire sees.
        byte[] bytes = [.. Enumerable.Range(0, Size).Select(i => (byte)(i * 31))];
        double[] doubles = [.. Enumerable.Range(0, Size / sizeof(double)).Select(i => i * 0.5)];
        byte[][] byteItems = [.. Enumerable.Repeat(bytes, count)];
        double[][] doubleItems = [.. Enumerable.Repeat(doubles, count)];

        using var pool = new ProcessPool(context.PoolOptions());
        using RawPipe pipe = RawPipe.Start();
        Add("byte[] one way", null, () => Rate(count, 1, () => Expect(pool.Map(Functions.Length, byteItems), Size)));
        Add("byte[] echo", () => GC.AllocateUninitializedArray<byte>(Size), () => Rate(count, 2, () => Expect(pool.Map(Functions.Echo, byteItems), Size)));
        Add("double[] one way", null, () => Rate(count, 1, () => Expect(pool.Map(Functions.LengthOfDoubles, doubleItems), Size / sizeof(double))));
        Add("double[] echo", () => GC.AllocateUninitializedArray<double>(Size / sizeof(double)), () => Rate(count, 2, () => Expect(pool.Map(Functions.EchoDoubles, doubleItems), Size / sizeof(double))));

        // newEcho: for an echo, a new array of the variant's type, as the pool's readers allocate for each result.
        void Add(string variant, Func<Array>? newEcho, Func<double> pooled)
        {
            bool echo = newEcho is not null;
            Func<double>[] runs = echo
                ? [pooled, () => pipe.Stream(Size, count, echo: true), () => pipe.Stream(Size, count, echo: true, newEcho)]
                : [pooled, () => pipe.Stream(Size, count, echo: false)];
            Stats[] stats = Measure.AlternatingAll(context.Pick(context.Reps * RepsFactor, context.Reps), runs, context.Pick(WarmUp, Measure.WarmUp));
            context.Add(Id, variant, Impls.ProcessPool, Units.MegabytesPerSecond, stats[0]);
            context.Add(Id, variant, Impls.RawPipe, Units.MegabytesPerSecond, stats[1]);
            if (echo)
            {
                context.Add(Id, variant, Impls.RawPipeNewArrays, Units.MegabytesPerSecond, stats[2], "each echo read into a new array, all kept to the end, as Map returns them");
            }
        }
    }

    private static double Rate(int count, int directions, Action action) =>
        (double)Size * count * directions / 1e6 / Measure.Time(action).TotalSeconds;

    private static void Expect(int[] lengths, int length)
    {
        if (lengths.Any(l => l != length))
        {
            throw new InvalidOperationException($"A task saw a length other than {length}.");
        }
    }

    private static void Expect<T>(T[][] arrays, int length)
    {
        if (arrays.Any(a => a.Length != length))
        {
            throw new InvalidOperationException($"An echo came back with a length other than {length}.");
        }
    }
}
