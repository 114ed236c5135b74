using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pool.Bench;

/// <summary>
/// Collects the figures of a run: each one is written at once as a JSON line (so a run cut short keeps what
/// it measured) and echoed as a progress line; <see cref="PrintTable"/> prints them side by side at the end.
/// </summary>
internal sealed class Report : IDisposable
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly List<Figure> _figures = [];
    private readonly List<string> _notes = [];
    private readonly StreamWriter _json;
    private readonly RunInfo _run;

    public Report(string outPath, RunInfo run)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        _json = new StreamWriter(outPath, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        _run = run;
        OutPath = Path.GetFullPath(outPath);
    }

    public string OutPath { get; }

    public IReadOnlyList<Figure> Figures => _figures;

    public void Add(Figure figure)
    {
        _figures.Add(figure);
        _json.WriteLine(JsonSerializer.Serialize(JsonLine.From(figure, _run), JsonOptions));
        Console.WriteLine($"  {figure.Workload,-3} {Shorten(figure.Variant, 34),-34} {figure.Impl,-16} {Describe(figure)}");
    }

    /// <summary>A remark printed at once and again under the table (sample counts used, skipped references).</summary>
    public void Note(string workload, string text)
    {
        _notes.Add($"{workload}: {text}");
        Console.WriteLine($"  {workload,-3} note: {text}");
    }

    public void PrintTable(TextWriter output)
    {
        var rows = new List<string[]> { new[] { "", "variant", "unit", "ProcessPool median (min–max)", "references (median)", "ratio (>1: ProcessPool better)" } };
        foreach (IGrouping<(string Workload, string Variant), Figure> row in _figures.GroupBy(f => (f.Workload, f.Variant)))
        {
            Figure? own = row.FirstOrDefault(f => f.Impl == Impls.ProcessPool);
            Figure[] references = [.. row.Where(f => f.Impl != Impls.ProcessPool)];
            string unit = (own ?? references[0]).Unit;
            rows.Add(
            [
                row.Key.Workload,
                row.Key.Variant,
                unit == Units.Check ? "" : unit,
                own is null ? "—" : Describe(own, withUnit: false),
                string.Join("; ", references.Select(r => $"{r.Impl} {(r.Stats is { } s ? Number(s.Median) : "—")}")),
                string.Join("; ", references.Select(r => Ratio(own, r)).OfType<string>()),
            ]);
        }

        int[] widths = [.. Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length))];
        for (int i = 0; i < rows.Count; i++)
        {
            output.WriteLine(string.Join(" │ ", rows[i].Select((cell, c) => cell.PadRight(widths[c]))).TrimEnd());
            if (i == 0)
            {
                output.WriteLine(string.Join("─┼─", widths.Select(w => new string('─', w))));
            }
        }

        if (_notes.Count > 0)
        {
            output.WriteLine();
            foreach (string note in _notes)
            {
                output.WriteLine("  " + note);
            }
        }

        foreach (Figure figure in _figures.Where(f => f.Note is not null && (f.Passed == false || f.Stats is null && !f.IsCheck)))
        {
            output.WriteLine($"  {figure.Workload} {figure.Variant} [{figure.Impl}]: {figure.Note}");
        }
    }

    public void Dispose() => _json.Dispose();

    /// <summary>
    /// How many times better ProcessPool is than <paramref name="reference"/>, as "2.3× mp.Pool"; none unless both
    /// medians are positive, and for a memory growth (W9's MiB and MiB/s) none unless both reach
    /// <see cref="Units.GrowthNoise"/>: a flat reading is zero or a little either side, and a quotient of it
    /// would be noise. The value columns show such figures side by side.
    /// </summary>
    private static string? Ratio(Figure? own, Figure reference)
    {
        if (own?.Stats is not { } mine || reference.Stats is not { } theirs || mine.Median <= 0 || theirs.Median <= 0
            || (Units.IsGrowth(reference.Unit) && (mine.Median < Units.GrowthNoise || theirs.Median < Units.GrowthNoise)))
        {
            return null;
        }

        double ratio = Units.HigherIsBetter(own.Unit) ? mine.Median / theirs.Median : theirs.Median / mine.Median;
        string text = ratio >= 10 ? ratio.ToString("F0", CultureInfo.InvariantCulture)
            : ratio >= 1 ? ratio.ToString("F1", CultureInfo.InvariantCulture)
            : ratio.ToString("G2", CultureInfo.InvariantCulture);
        return $"{text}× {reference.Impl}";
    }

    private static string Describe(Figure figure, bool withUnit = true)
    {
        if (figure.Passed is { } passed)
        {
            return (passed ? "pass" : "FAIL") + (figure.Note is null ? "" : passed ? $" ({figure.Note})" : withUnit ? ": " + figure.Note : "");
        }

        if (figure.Stats is not { } s)
        {
            return figure.Note ?? "not measured";
        }

        string unit = withUnit ? " " + figure.Unit : "";
        return s.Reps == 1 || s.Min == s.Max
            ? $"{Number(s.Median)}{unit}"
            : $"{Number(s.Median)}{unit} ({Number(s.Min)}–{Number(s.Max)})";
    }

    /// <summary>Three significant digits, with k/M/G for large values.</summary>
    public static string Number(double value)
    {
        double magnitude = Math.Abs(value);
        (double scaled, string suffix) = magnitude switch
        {
            >= 1e9 => (value / 1e9, " G"),
            >= 1e6 => (value / 1e6, " M"),
            >= 1e4 => (value / 1e3, " k"),
            _ => (value, ""),
        };
        double abs = Math.Abs(scaled);
        int decimals = abs >= 100 || scaled == Math.Round(scaled) ? 0 : Math.Min(8, 2 - (int)Math.Floor(Math.Log10(abs)));
        string format = "F" + decimals.ToString(CultureInfo.InvariantCulture);
        return scaled.ToString(format, CultureInfo.InvariantCulture) + suffix;
    }

    private static string Shorten(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";

    /// <summary>The JSON line of one figure, with what is needed to compare runs later.</summary>
    private sealed record JsonLine(
        string Workload, string Variant, string Impl, string Unit, double? Median, double? Min, double? Max, int? Reps,
        bool? Passed, string? Note, bool Quick, Machine Machine, string Timestamp, string? Commit)
    {
        public static JsonLine From(Figure f, RunInfo run) => new(
            f.Workload, f.Variant, f.Impl, f.Unit, f.Stats?.Median, f.Stats?.Min, f.Stats?.Max, f.Stats?.Reps,
            f.Passed, f.Note, run.Quick, run.Machine, run.Timestamp.ToString("O", CultureInfo.InvariantCulture), run.Commit);
    }
}
