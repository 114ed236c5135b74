using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Pool.Bench;

/// <summary>
/// What the bench ships to workers: static methods, so that a worker binds them by reference. The worker
/// loads this assembly through the bench's deps.json, as it would load any application's.
/// </summary>
public static partial class Functions
{
    /// <summary>Set in W6's workers: the file a crashing task writes its <see cref="Stopwatch"/> timestamp to, just before it crashes.</summary>
    public const string CrashStampVariable = "POOL_BENCH_CRASH_STAMP";

    /// <summary>The index of the task that crashes in W6.</summary>
    public const int CrashingTask = 50;

    public static int Increment(int x) => x + 1;

    /// <summary>W11: a record in, a record out.</summary>
    public static Scored Score(Sample sample) => new(sample.Id, (sample.Value * 2) + 1, sample.Name.ToUpperInvariant());

    public static int Identity(int x) => x;

    public static int Length(byte[] bytes) => bytes.Length;

    public static int LengthOfDoubles(double[] values) => values.Length;

    public static byte[] Echo(byte[] bytes) => bytes;

    public static double[] EchoDoubles(double[] values) => values;

    /// <summary>W7: a task that never returns.</summary>
    public static int Hang(int x)
    {
        Thread.Sleep(Timeout.Infinite);
        return x;
    }

    /// <summary>
    /// W3's task (shared/WORKLOADS.md): how many of <paramref name="samples"/> points of a 64-bit LCG seeded with
    /// <paramref name="seed"/> fall in the unit quarter circle. Seed 1 with 200,000 samples gives 156,769.
    /// </summary>
    public static long McPi(int seed, int samples)
    {
        ulong state = (ulong)seed;
        long inside = 0;
        for (int i = 0; i < samples; i++)
        {
            state = (state * 6364136223846793005UL) + 1442695040888963407UL;
            double x = (state >> 11) * (1.0 / (1UL << 53));
            state = (state * 6364136223846793005UL) + 1442695040888963407UL;
            double y = (state >> 11) * (1.0 / (1UL << 53));
            if ((x * x) + (y * y) <= 1.0)
            {
                inside++;
            }
        }

        return inside;
    }

    public static int IncrementOrFailFast(int x)
    {
        if (x == CrashingTask)
        {
            StampCrash();
            Environment.FailFast("Pool.Bench W6: fail-fast on purpose");
        }

        return x + 1;
    }

    public static int IncrementOrExit1(int x)
    {
        if (x == CrashingTask)
        {
            StampCrash();
            Environment.Exit(1);
        }

        return x + 1;
    }

    public static int IncrementOrSegfault(int x)
    {
        if (x == CrashingTask)
        {
            StampCrash();
            _ = StrLen(0);
        }

        return x + 1;
    }

    public static int IncrementOrStackOverflow(int x)
    {
        if (x == CrashingTask)
        {
            StampCrash();
            _ = Recurse(0);
        }

        return x + 1;
    }

    /// <summary>
    /// Records when the crash happens. <see cref="Stopwatch.GetTimestamp"/> reads CLOCK_MONOTONIC on Linux, a
    /// clock every process of the machine shares, so the host can subtract it from its own timestamps.
    /// </summary>
    private static void StampCrash()
    {
        if (Environment.GetEnvironmentVariable(CrashStampVariable) is { Length: > 0 } path)
        {
            File.WriteAllText(path, Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture));
        }
    }

    private static int Recurse(int depth)
    {
        Span<byte> frame = stackalloc byte[256];
        frame[depth % 256] = (byte)depth;
        return Recurse(depth + 1) + frame[0];
    }

    [LibraryImport("libc", EntryPoint = "strlen")]
    private static partial nint StrLen(nint text);
}

/// <summary>W11's argument: an int, a double, a string.</summary>
public sealed record Sample(int Id, double Value, string Name)
{
    public static Sample Of(int i) => new(i, i * 0.5, "item-" + i.ToString(CultureInfo.InvariantCulture));
}

/// <summary>W11's result.</summary>
public sealed record Scored(int Id, double Score, string Label);
