using System.Diagnostics.Metrics;

namespace Pool.Internal;

/// <summary>
/// A pool's instruments on the <c>ProcessPool</c> meter (see README, "Observability", and <see cref="ProcessPoolTelemetry"/>):
/// the process-wide meter that every pool without <see cref="ProcessPoolOptions.MeterFactory"/> shares, or one from that
/// factory. Recorded once per chunk or per call, never per task, and without tags, so recording allocates nothing.
/// </summary>
internal sealed class PoolMetrics
{
    public const string MeterName = ProcessPoolTelemetry.MeterName;

    private static readonly string? Version = typeof(PoolMetrics).Assembly.GetName().Version?.ToString();

    /// <summary>The instruments of every pool created without a meter factory.</summary>
    public static readonly PoolMetrics Default = new(new Meter(MeterName, Version));

    private PoolMetrics(Meter meter)
    {
        Submitted = meter.CreateCounter<long>(ProcessPoolTelemetry.TasksSubmitted, "{task}", "Tasks handed to the pool.");
        Completed = meter.CreateCounter<long>(ProcessPoolTelemetry.TasksCompleted, "{task}", "Tasks that ended with a value.");
        Failed = meter.CreateCounter<long>(ProcessPoolTelemetry.TasksFailed, "{task}", "Tasks that ended with an exception.");
        TaskDuration = meter.CreateHistogram<double>(
            ProcessPoolTelemetry.TaskDuration, "s", "Time per task on a worker: each chunk's service time divided by its task count.");
        Queued = meter.CreateUpDownCounter<long>(ProcessPoolTelemetry.TasksQueued, "{task}", "Tasks submitted and not yet sent to a worker.");
        Restarts = meter.CreateCounter<long>(ProcessPoolTelemetry.WorkerRestarts, "{worker}", "Workers started to replace a lost or retired one.");
    }

    /// <summary>Tasks handed to the pool: a Map's items at the call, an Imap's as they are read from its input.</summary>
    public Counter<long> Submitted { get; }

    /// <summary>Tasks that ended with a value.</summary>
    public Counter<long> Completed { get; }

    /// <summary>Tasks that ended with an exception (thrown, crashed, timed out, cancelled).</summary>
    public Counter<long> Failed { get; }

    /// <summary>A chunk's service time on its worker divided by its task count.</summary>
    public Histogram<double> TaskDuration { get; }

    /// <summary>Tasks submitted and not yet sent to a worker.</summary>
    public UpDownCounter<long> Queued { get; }

    /// <summary>Workers started to replace a lost or retired one.</summary>
    public Counter<long> Restarts { get; }

    /// <summary>The instruments of a pool with these options: on the factory's meter when there is one.</summary>
    public static PoolMetrics For(IMeterFactory? factory) =>
        factory is null ? Default : new PoolMetrics(factory.Create(new MeterOptions(MeterName) { Version = Version }));
}
