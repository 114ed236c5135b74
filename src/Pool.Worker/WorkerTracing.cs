using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker's side of tracing: a chunk that came with the caller's trace context runs in an activity whose parent is
/// that context (the host's chunk activity), so that an activity a task starts is in the caller's trace. From the
/// <c>ProcessPool</c> source when something in the worker listens (an exporter an initializer set up), else a bare
/// <see cref="Activity"/> that only carries the context. A chunk without a context costs one comparison.
/// </summary>
internal static class WorkerTracing
{
    private static readonly ActivitySource Source = new(TraceNames.Source);

    public static Activity? Start(WorkItem work)
    {
        if (work is not ChunkWork chunk || chunk.Trace == default)
        {
            return null;
        }

        ActivityContext parent = chunk.Trace;
        return Source.StartActivity(TraceNames.WorkerChunk, ActivityKind.Server, parent)
            ?? new Activity(TraceNames.WorkerChunk).SetParentId(parent.TraceId, parent.SpanId, parent.TraceFlags).Start();
    }
}
