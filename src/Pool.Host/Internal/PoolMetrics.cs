using System.Diagnostics.Metrics;

namespace Pool.Internal;

/// <summary>
/// The pool's instruments on the <c>ProcessPool</c> meter (see README, "Observability"). Every pool in the
/// process records to the same instruments. Recorded once per chunk or per call, never per task, and
/// without tags, so recording allocates nothing.
/// </summary>
internal static class PoolMetrics
{
    public const string MeterName = ProcessPoolTelemetry.MeterName;

    public static readonly Meter Meter = new(MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>Tasks handed to the pool: a Map's items at the call, an Imap's as they are read from its input.</summary>
    public static readonly Counter<long> Submitted = Meter.CreateCounter<long>(
        ProcessPoolTelemetry.TasksSubmitted, "{task}", "Tasks handed to the pool.");

    /// <summary>Tasks that ended with a value.</summary>
    public static readonly Counter<long> Completed = Meter.CreateCounter<long>(
        ProcessPoolTelemetry.TasksCompleted, "{task}", "Tasks that ended with a value.");

    /// <summary>Tasks that ended with an exception (thrown, crashed, timed out, cancelled).</summary>
    public static readonly Counter<long> Failed = Meter.CreateCounter<long>(
        ProcessPoolTelemetry.TasksFailed, "{task}", "Tasks that ended with an exception.");

    /// <summary>A chunk's service time on its worker divided by its task count.</summary>
    public static readonly Histogram<double> TaskDuration = Meter.CreateHistogram<double>(
        ProcessPoolTelemetry.TaskDuration, "s", "Time per task on a worker: each chunk's service time divided by its task count.");

    /// <summary>Tasks submitted and not yet sent to a worker.</summary>
    public static readonly UpDownCounter<long> Queued = Meter.CreateUpDownCounter<long>(
        ProcessPoolTelemetry.TasksQueued, "{task}", "Tasks submitted and not yet sent to a worker.");

    /// <summary>Workers started to replace a lost or retired one.</summary>
    public static readonly Counter<long> Restarts = Meter.CreateCounter<long>(
        ProcessPoolTelemetry.WorkerRestarts, "{worker}", "Workers started to replace a lost or retired one.");
}
