using System.Diagnostics;
using Pool;

// ProcessPool demo: a Monte Carlo estimate of π spread over every core, against the same loop on one core.
const int Tasks = 64;
int[] seeds = [.. Enumerable.Range(1, Tasks)];

Console.WriteLine($"ProcessPool demo: {Tasks} Monte Carlo tasks of {MonteCarlo.Samples:N0} samples each, {Environment.ProcessorCount} cores");

var clock = Stopwatch.StartNew();
long serialInside = 0;
foreach (int seed in seeds)
{
    serialInside += MonteCarlo.CountInside(seed);
    Progress("serial", seed, clock.Elapsed);
}

TimeSpan serial = clock.Elapsed;
EndBar();

using var pool = new ProcessPool();
clock.Restart();
long poolInside = 0;
int done = 0;
foreach ((long _, long inside) in pool.ImapUnordered(MonteCarlo.CountInside, seeds))
{
    poolInside += inside;
    Progress($"pool ({pool.WorkerCount} workers)", ++done, clock.Elapsed);
}

TimeSpan parallel = clock.Elapsed;
EndBar();

double pi = 4.0 * poolInside / ((double)Tasks * MonteCarlo.Samples);
Console.WriteLine($"π ≈ {pi:F6} (error {Math.Abs(pi - Math.PI):E1}); same count as the serial loop: {poolInside == serialInside}");
Console.WriteLine($"serial {serial.TotalSeconds:F2} s, pool {parallel.TotalSeconds:F2} s: speed-up {serial / parallel:F2}x on {pool.WorkerCount} workers");

// Fault isolation: one task calls native code that segfaults. Only that task fails; its worker is replaced.
Console.WriteLine();
Console.WriteLine("A native crash costs one task: task 3 calls strlen(NULL) through P/Invoke.");
Outcome<int>[] outcomes = pool.MapOutcomes(NativeCode.LengthOrCrash, ["alpha", "beta", "gamma", null, "delta", "epsilon"]);
foreach (Outcome<int> outcome in outcomes)
{
    Console.WriteLine(outcome.Succeeded
        ? $"  task {outcome.Index}: {outcome.Value}"
        : $"  task {outcome.Index}: {outcome.Exception!.GetType().Name}: {outcome.Exception.Message.Split(Environment.NewLine)[0]}");
}

Console.WriteLine($"The pool carries on with {pool.WorkerCount} workers: {string.Join(" ", pool.Map(NativeCode.Length, ["still", "here"]))}");

static void EndBar()
{
    if (!Console.IsOutputRedirected)
    {
        Console.WriteLine();
    }
}

// A bar redrawn in place on a terminal; plain lines, one every 10 %, when the output goes to a file or a pipe
// (a redrawn bar there is one line of thousands of characters).
static void Progress(string label, int completed, TimeSpan elapsed)
{
    if (Console.IsOutputRedirected)
    {
        if (completed * 10 / Tasks != (completed - 1) * 10 / Tasks)
        {
            Console.WriteLine($"{label}: {completed}/{Tasks} in {elapsed.TotalSeconds:F2} s");
        }

        return;
    }

    int width = 32;
    int filled = completed * width / Tasks;
    Console.Write($"\r{label,-22} [{new string('#', filled)}{new string('.', width - filled)}] {completed,3}/{Tasks} {elapsed.TotalSeconds,6:F2} s");
}

/// <summary>The benchmark's Monte Carlo task (shared/WORKLOADS.md W3), with more samples.</summary>
internal static class MonteCarlo
{
    public const int Samples = 10_000_000;

    /// <summary>How many of <see cref="Samples"/> pseudo-random points fall in the unit quarter circle.</summary>
    public static long CountInside(int seed)
    {
        ulong state = (ulong)seed;
        long inside = 0;
        for (int i = 0; i < Samples; i++)
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
}

/// <summary>Crash-prone native code: libc's strlen, which segfaults on a null pointer.</summary>
internal static partial class NativeCode
{
    public static int Length(string text) => text.Length;

    /// <summary>The string's length by libc's strlen; a null string crashes the process (SIGSEGV).</summary>
    public static int LengthOrCrash(string? text)
    {
        nint native = text is null ? 0 : System.Runtime.InteropServices.Marshal.StringToCoTaskMemUTF8(text);
        try
        {
            return (int)StrLen(native);
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeCoTaskMem(native);
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "strlen")]
    private static partial nint StrLen(nint text);
}
