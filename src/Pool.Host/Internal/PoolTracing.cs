using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The pool's activities (see <see cref="ProcessPoolTelemetry.ActivitySourceName"/>): one per call, one per chunk, and
/// the W3C trace context a chunk carries to its worker. With no listener and no current activity a call costs one
/// check of <see cref="ActivitySource.HasListeners"/> and one read of <see cref="Activity.Current"/>, a chunk one
/// branch, and the frame nothing.
/// </summary>
internal static class PoolTracing
{
    public static readonly ActivitySource Source = new(TraceNames.Source, typeof(PoolTracing).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// At a call, on the caller's thread: the call's activity when someone listens (null otherwise), and the context
    /// its chunks carry: the call's activity, else the caller's current one, else none. The caller's
    /// <see cref="Activity.Current"/> is left as it was: the call's activity ends when the call does, elsewhere.
    /// </summary>
    public static Activity? StartCall(string operation, out ActivityContext parent)
    {
        Activity? current = Activity.Current;
        Activity? call = Source.HasListeners() ? Source.StartActivity("ProcessPool." + operation, ActivityKind.Internal) : null;
        if (call is not null)
        {
            Activity.Current = current;
        }

        parent = call?.Context ?? current?.Context ?? default;
        return call;
    }

    /// <summary>Dispatcher: the activity of a chunk about to be written, child of the call's; the dispatcher's current activity is kept.</summary>
    public static Activity? StartChunk(Activity call, Chunk chunk)
    {
        Activity? current = Activity.Current;
        Activity? activity = Source.StartActivity(TraceNames.Chunk, ActivityKind.Client, call.Context);
        if (activity is null)
        {
            return null;
        }

        Activity.Current = current;
        if (activity.IsAllDataRequested)
        {
            activity.SetTag("processpool.chunk.first_task", chunk.FirstIndex);
            activity.SetTag("processpool.chunk.tasks", chunk.Count);
        }

        return activity;
    }

    /// <summary>Ends an activity from any thread (router, dispatcher, thread pool) without changing that thread's current activity.</summary>
    public static void Stop(Activity activity, Exception? error = null)
    {
        Activity? current = Activity.Current;
        if (error is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error.Message);
        }

        activity.Stop();
        Activity.Current = current;
    }
}
