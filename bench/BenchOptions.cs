using System.Globalization;

namespace Pool.Bench;

/// <summary>The command line of a bench run; parsed by hand, it is small.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        Pool.Bench: the side-by-side benchmark of shared/WORKLOADS.md.

          dotnet run -c Release --project bench [-- options]

          --quick         fewer items and shorter runs (a smoke run or a first look)
          --reps N        repetitions per figure after one warm-up (default 5); a figure is their median and min-max
          --no-python     skip the Python references (multiprocessing, joblib)
          --only W1,W3    run only these workloads
          --slurm         also run S1: W1-W3 and start-up with workers on a Slurm cluster's nodes (needs sbatch/srun here)
          --out PATH      JSON lines file (default artifacts/bench/results-<utc>.jsonl under the repo root)
          --micro ...     run the BenchmarkDotNet micro-benchmarks instead; the other arguments go to BenchmarkSwitcher
          --help          this text
        """;

    public bool Quick { get; init; }

    public int Reps { get; init; } = 5;

    public bool Python { get; init; } = true;

    /// <summary>Workload ids to run (upper case), or null for all.</summary>
    public IReadOnlySet<string>? Only { get; init; }

    public string? OutPath { get; init; }

    public bool Help { get; init; }

    /// <summary>Whether S1 (workers on Slurm nodes) runs too; it needs a cluster, so it never runs unasked.</summary>
    public bool Slurm { get; init; }

    public bool Selected(string workload) =>
        Only?.Contains(workload) ?? (workload != Workloads.S1Slurm.Id || Slurm);

    /// <exception cref="ArgumentException">An argument is unknown or malformed; the message says which.</exception>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            options = arg switch
            {
                "--quick" => options with { Quick = true },
                "--no-python" => options with { Python = false },
                "--slurm" => options with { Slurm = true },
                "--help" or "-h" => options with { Help = true },
                "--reps" => options with { Reps = ParseReps(Value(args, ref i)) },
                "--only" => options with { Only = ParseOnly(Value(args, ref i)) },
                "--out" => options with { OutPath = Value(args, ref i) },
                _ => throw new ArgumentException($"Unknown argument '{arg}'."),
            };
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        string name = args[i];
        if (++i >= args.Count || args[i].StartsWith("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"{name} needs a value.");
        }

        return args[i];
    }

    private static int ParseReps(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int reps) && reps >= 1
            ? reps
            : throw new ArgumentException($"--reps needs a positive whole number, not '{text}'.");

    private static HashSet<string> ParseOnly(string text)
    {
        var ids = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string id in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Workloads.Catalog.Ids.Contains(id, StringComparer.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"--only: unknown workload '{id}' (known: {string.Join(",", Workloads.Catalog.Ids)}).");
            }

            ids.Add(id);
        }

        return ids;
    }
}
