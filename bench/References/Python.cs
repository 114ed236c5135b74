using System.Diagnostics;
using System.Text.Json;
using CliWrap;
using CliWrap.Buffered;
using Pool.Bench.Workloads;

namespace Pool.Bench.References;

/// <summary>
/// Runs the Python references (bench/python/*.py, copied next to the bench) with the run's --quick and --reps,
/// and adds the figures they print, one JSON object per line, to the report. Python is looked for as
/// /usr/bin/python3 (Debian's, which has joblib) and then as python3 on PATH; a missing interpreter or
/// module is a note, never a failure.
/// </summary>
internal static class Python
{
    public static async Task RunAsync(BenchContext context, IReadOnlyList<Workload> workloads)
    {
        if (workloads.Count == 0)
        {
            return;
        }

        if (Find() is not { } python)
        {
            context.Note("py", "no python3 found (/usr/bin/python3, PATH): Python references skipped");
            return;
        }

        string version = await VersionAsync(python);
        context.Note("py", $"{python}, {version}");
        foreach (Workload workload in workloads)
        {
            string script = Path.Combine(AppContext.BaseDirectory, "python", workload.PythonScript!);
            var clock = Stopwatch.StartNew();
            await RunScriptAsync(context, python, version, script, workload.Id, TimeSpan.FromSeconds(context.Quick ? 180 : 900));
            Console.WriteLine($"  ({workload.Id} Python: {clock.Elapsed.TotalSeconds:F1} s)");
        }
    }

    private static string? Find()
    {
        if (File.Exists("/usr/bin/python3"))
        {
            return "/usr/bin/python3";
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "python3"))
            .FirstOrDefault(File.Exists);
    }

    private static async Task<string> VersionAsync(string python)
    {
        BufferedCommandResult result = await Cli.Wrap(python).WithArguments(["-c", "import sys; print(sys.version.split()[0])"]).ExecuteBufferedAsync();
        return "Python " + result.StandardOutput.Trim();
    }

    private static async Task RunScriptAsync(BenchContext context, string python, string version, string script, string workload, TimeSpan timeout)
    {
        var errors = new Queue<string>();
        using var deadline = new CancellationTokenSource(timeout);
        CommandResult result;
        try
        {
            // Each figure is added as its line arrives; the last 20 lines of stderr say why a script failed.
            result = await Cli.Wrap(python)
                .WithArguments(args =>
                {
                    args.Add(script).Add("--reps").Add(context.Reps, System.Globalization.CultureInfo.InvariantCulture);
                    if (context.Quick)
                    {
                        args.Add("--quick");
                    }
                })
                .WithWorkingDirectory(Path.GetDirectoryName(script)!)
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(PipeTarget.ToDelegate(line => Parse(context, workload, version, line)))
                .WithStandardErrorPipe(PipeTarget.ToDelegate(line =>
                {
                    errors.Enqueue(line);
                    if (errors.Count > 20)
                    {
                        errors.Dequeue();
                    }
                }))
                .ExecuteAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            // CliWrap killed the script's process tree.
            context.Note(workload, $"{Path.GetFileName(script)} timed out after {timeout.TotalSeconds:F0} s and was killed");
            return;
        }

        if (result.ExitCode != 0)
        {
            context.Note(workload, $"{Path.GetFileName(script)} exited with {result.ExitCode}: {string.Join(" | ", errors)}");
        }
    }

    /// <summary>One line of a script: a figure (workload, variant, impl, unit, median, min, max, reps, note?) or a note.</summary>
    private static void Parse(BenchContext context, string workload, string version, string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            JsonElement root = document.RootElement;
            if (root.TryGetProperty("note", out JsonElement note) && !root.TryGetProperty("median", out _))
            {
                context.Note(workload, note.GetString() ?? "");
                return;
            }

            var stats = new Stats(root.GetProperty("median").GetDouble(), root.GetProperty("min").GetDouble(), root.GetProperty("max").GetDouble(), root.GetProperty("reps").GetInt32());
            context.Add(new Figure(
                root.GetProperty("workload").GetString()!, root.GetProperty("variant").GetString()!, root.GetProperty("impl").GetString()!,
                root.GetProperty("unit").GetString()!, stats, note.ValueKind == JsonValueKind.String ? $"{version}; {note.GetString()}" : version));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            context.Note(workload, $"unreadable line from Python: {line}");
        }
    }
}
