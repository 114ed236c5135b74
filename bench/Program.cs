using System.Diagnostics;
using System.Runtime.CompilerServices;
using Pool.Bench.Micro;
using Pool.Bench.References;
using Pool.Bench.Workloads;

namespace Pool.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        // Hidden modes: this executable is also the child process of the raw-pipe and process-start
        // references. They are tested first and touch nothing else, so that `--hello` costs what a
        // hello-world costs.
        if (args is ["--pipe-echo", string pipeName])
        {
            return RawPipe.RunEchoChild(pipeName);
        }

        if (args is ["--hello"])
        {
            Console.WriteLine("hello");
            return 0;
        }

        if (Array.IndexOf(args, "--micro") >= 0)
        {
            return MicroRunner.Run(args);
        }

        return Run(args).GetAwaiter().GetResult();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<int> Run(string[] args)
    {
        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(BenchOptions.Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(BenchOptions.Usage);
            return 0;
        }

        RunInfo run = RunInfo.Detect(options.Quick);
        using var report = new Report(options.OutPath ?? run.DefaultOutPath(), run);
        var context = new BenchContext(options, report);
        Console.WriteLine(
            $"Pool.Bench {(options.Quick ? "--quick " : "")}--reps {options.Reps}: {context.Workers} workers; {run.Machine.Cpu}; " +
            $"{run.Machine.Os}; {run.Machine.Runtime}; commit {run.Commit ?? "unknown"}");
        Console.WriteLine($"JSON lines: {report.OutPath}");

        var total = Stopwatch.StartNew();
        int failures = 0;
        Workload[] selected = [.. Catalog.All.Where(w => options.Selected(w.Id))];
        foreach (Workload workload in selected)
        {
            Console.WriteLine();
            Console.WriteLine($"{workload.Id} {workload.Title}");
            var clock = Stopwatch.StartNew();
            try
            {
                workload.Run(context);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A broken workload is reported and the others still run; the exit code says something failed.
                failures++;
                report.Add(Figure.Check(workload.Id, "ran to the end", false, $"{e.GetType().Name}: {e.Message}"));
                Console.Error.WriteLine(e);
            }

            Console.WriteLine($"  ({clock.Elapsed.TotalSeconds:F1} s)");
        }

        Console.WriteLine();
        if (options.Python)
        {
            Console.WriteLine("Python references");
            await Python.RunAsync(context, [.. selected.Where(w => w.PythonScript is not null)]);
        }
        else
        {
            Console.WriteLine("Python references skipped (--no-python).");
        }

        Console.WriteLine();
        report.PrintTable(Console.Out);
        Console.WriteLine();
        Console.WriteLine($"{report.Figures.Count} figures in {total.Elapsed.TotalSeconds:F0} s. JSON lines: {report.OutPath}");
        return failures == 0 ? 0 : 1;
    }
}
