namespace Pool.Contracts;

/// <summary>The names host and worker give their activities (public as <c>ProcessPoolTelemetry</c>).</summary>
internal static class TraceNames
{
    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/> of host and worker alike.</summary>
    public const string Source = "ProcessPool";

    /// <summary>The host's activity for one chunk sent to a worker (its parent is the call's activity).</summary>
    public const string Chunk = "ProcessPool.Chunk";

    /// <summary>The worker's activity while it runs a chunk (its parent is the host's chunk activity, or the caller's).</summary>
    public const string WorkerChunk = "ProcessPool.Worker.Chunk";
}
