using System.Diagnostics;
using CliWrap;
using CliWrap.Buffered;
using Pool.Bench.References;

namespace Pool.Bench.Workloads;

/// <summary>
/// W5, start-up, in ms: from constructing a pool of 2 workers to the first result of a trivial task; and
/// construct + map 2 trivial tasks + close + join. Reference: one process start to exit of a hello-world
/// (this bench's <c>--hello</c>), started with the same <c>dotnet exec</c> as a worker, in turn with the first-result runs.
/// </summary>
internal static class W5Startup
{
    private const string Id = "W5";
    private const int Workers = 2;

    public static void Run(BenchContext context)
    {
        (Stats first, Stats hello) = Measure.Alternating(context.Reps, FirstResult, Hello);
        context.Add(Id, "first result", Impls.ProcessPool, Units.Milliseconds, first);
        context.Add(Id, "map 2 + close + join", Impls.ProcessPool, Units.Milliseconds, Measure.Repeat(context.Reps, MapCloseJoin));
        context.Add(Id, "first result", Impls.DotnetHello, Units.Milliseconds, hello, "one process, start to exit");
        context.Add(Id, "map 2 + close + join", Impls.DotnetHello, Units.Milliseconds, hello, "one process, start to exit");

        // How the pool starts its workers (Process) against CliWrap, on the same child, in turn: start, the exit seen, the output read.
        (Stats process, Stats cliWrap) = Measure.Alternating(context.Reps, Hello, HelloThroughCliWrap);
        context.Add(Id, "hello start to exit: Process, CliWrap", Impls.Process, Units.Milliseconds, process);
        context.Add(Id, "hello start to exit: Process, CliWrap", Impls.CliWrap, Units.Milliseconds, cliWrap);

        double FirstResult()
        {
            ProcessPool? pool = null;
            try
            {
                return Measure.Time(() =>
                {
                    pool = new ProcessPool(context.PoolOptions(Workers));
                    _ = pool.Apply(Functions.Increment, 1);
                }).TotalMilliseconds;
            }
            finally
            {
                pool?.Dispose();
            }
        }

        double MapCloseJoin() => Measure.Time(() =>
        {
            using var pool = new ProcessPool(context.PoolOptions(Workers));
            _ = pool.Map(Functions.Increment, [0, 1]);
            pool.Close();
            pool.Join();
        }).TotalMilliseconds;
    }

    private static double Hello()
    {
        long start = Stopwatch.GetTimestamp();
        using Process process = Process.Start(BenchChild.StartInfo("--hello"))!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        double elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (process.ExitCode != 0 || !output.StartsWith("hello", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The hello-world child exited with {process.ExitCode}: {process.StandardError.ReadToEnd()}");
        }

        return elapsed;
    }

    private static double HelloThroughCliWrap()
    {
        ProcessStartInfo info = BenchChild.StartInfo("--hello");
        long start = Stopwatch.GetTimestamp();
        BufferedCommandResult result = Cli.Wrap(info.FileName).WithArguments(info.ArgumentList).WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync().Task.GetAwaiter().GetResult();
        double elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (result.ExitCode != 0 || !result.StandardOutput.StartsWith("hello", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The hello-world child exited with {result.ExitCode}: {result.StandardError}");
        }

        return elapsed;
    }
}
