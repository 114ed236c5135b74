using Pool.Contracts;

namespace Pool;

/// <summary>
/// The names under which pools report: the <see cref="System.Diagnostics.ActivitySource"/> for tracing and the
/// <see cref="System.Diagnostics.Metrics.Meter"/> with its instruments, for OpenTelemetry (<c>AddSource</c>,
/// <c>AddMeter</c>) and <c>dotnet-counters monitor --counters ProcessPool</c>. Every pool in a process reports to
/// the same source and meter. Python's pools have no equivalent.
/// </summary>
public static class ProcessPoolTelemetry
{
    /// <summary>
    /// The activity source, in the host and in the workers. The host starts an activity per call (named by the
    /// operation: <c>Map</c>, <c>Imap</c>, <c>Apply</c>, <c>Run</c>...) and one per chunk (<see cref="ChunkActivityName"/>),
    /// and carries the W3C trace context to the worker, where the chunk runs in an activity
    /// (<see cref="WorkerChunkActivityName"/>): an activity a task starts is then in the caller's trace.
    /// </summary>
    public const string ActivitySourceName = TraceNames.Source;

    /// <summary>The host's activity for one chunk of tasks sent to a worker (kind Client), child of the call's.</summary>
    public const string ChunkActivityName = TraceNames.Chunk;

    /// <summary>The worker's activity while it runs one chunk (kind Server), child of the host's chunk activity.</summary>
    public const string WorkerChunkActivityName = TraceNames.WorkerChunk;

    /// <summary>The meter of every pool in the process.</summary>
    public const string MeterName = "ProcessPool";

    /// <summary>Counter, <c>{task}</c>: tasks handed to the pool (a Map's items at the call, an Imap's as they are read).</summary>
    public const string TasksSubmitted = "processpool.tasks.submitted";

    /// <summary>Counter, <c>{task}</c>: tasks that ended with a value.</summary>
    public const string TasksCompleted = "processpool.tasks.completed";

    /// <summary>Counter, <c>{task}</c>: tasks that ended with an exception (thrown, crashed, timed out, cancelled).</summary>
    public const string TasksFailed = "processpool.tasks.failed";

    /// <summary>UpDownCounter, <c>{task}</c>: tasks submitted and not yet sent to a worker.</summary>
    public const string TasksQueued = "processpool.tasks.queued";

    /// <summary>Histogram, seconds: time per task on a worker (each chunk's service time divided by its task count).</summary>
    public const string TaskDuration = "processpool.task.duration";

    /// <summary>Counter, <c>{worker}</c>: workers started to replace a lost or retired one.</summary>
    public const string WorkerRestarts = "processpool.workers.restarts";
}
