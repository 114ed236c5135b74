namespace Pool.Bench;

/// <summary>
/// One measured figure of one implementation, or a check (<see cref="Passed"/> set), or a figure that could
/// not be taken (<see cref="Stats"/> null, <see cref="Note"/> says why). Figures with the same workload and
/// variant form one row of the table: ProcessPool's and its references'.
/// </summary>
internal sealed record Figure(string Workload, string Variant, string Impl, string Unit, Stats? Stats, string? Note = null, bool? Passed = null)
{
    public bool IsCheck => Passed is not null;

    public static Figure Check(string workload, string variant, bool passed, string? detail = null) =>
        new(workload, variant, Impls.ProcessPool, Units.Check, null, detail, passed);

    public static Figure Skipped(string workload, string variant, string impl, string unit, string why) =>
        new(workload, variant, impl, unit, null, why);
}

/// <summary>Implementation names, as they appear in the table and the JSON lines.</summary>
internal static class Impls
{
    public const string ProcessPool = "ProcessPool";
    public const string Floor = "floor";
    public const string Serial = "serial";
    public const string RawPipe = "raw pipe";
    public const string RawPipeNewArrays = "raw pipe, new arrays";
    public const string ThreadHandOff = "thread hand-off";
    public const string DotnetHello = "dotnet hello";
    public const string Json = "JsonPoolSerializer";
    public const string Process = "Process";
    public const string CliWrap = "CliWrap";
    public const string Local = "local workers";
}

/// <summary>Units, and which way is better for each (ratios are written so that above 1 means ProcessPool is better).</summary>
internal static class Units
{
    public const string TasksPerSecond = "tasks/s";
    public const string Microseconds = "µs";
    public const string Milliseconds = "ms";
    public const string MegabytesPerSecond = "MB/s";
    public const string SpeedUp = "×";
    public const string Percent = "%";
    public const string MiB = "MiB";
    public const string MiBPerSecond = "MiB/s";
    public const string Items = "items";
    public const string Samples = "samples";
    public const string Check = "check";

    /// <summary>
    /// Below this, a memory growth (<see cref="MiB"/>, <see cref="MiBPerSecond"/>) is flat within the noise of a
    /// working-set reading, and the table gives no ratio for it.
    /// </summary>
    public const double GrowthNoise = 1.0;

    public static bool HigherIsBetter(string unit) => unit is TasksPerSecond or MegabytesPerSecond or SpeedUp or Percent;

    /// <summary>Units of a memory growth: lower is better, and zero or a little either side means flat.</summary>
    public static bool IsGrowth(string unit) => unit is MiB or MiBPerSecond;
}
