using Microsoft.Extensions.Logging;

namespace Pool.Internal;

/// <summary>What a Slurm allocation logs (event ids 101-105, apart from <see cref="Log"/>'s).</summary>
internal static partial class SlurmLog
{
    [LoggerMessage(101, LogLevel.Information, "Asked Slurm for an allocation: job {JobId} ({Command})")]
    public static partial void Submitted(ILogger logger, string jobId, string command);

    [LoggerMessage(102, LogLevel.Information, "Slurm job {JobId} is {State}, reason {Reason}, after {Elapsed}")]
    public static partial void Pending(ILogger logger, string jobId, string state, string reason, TimeSpan elapsed);

    [LoggerMessage(103, LogLevel.Information, "Slurm job {JobId} runs on {Nodes}: {Slots} workers, after {Elapsed}")]
    public static partial void Running(ILogger logger, string jobId, string nodes, int slots, TimeSpan elapsed);

    [LoggerMessage(104, LogLevel.Information, "Using the Slurm allocation this process runs in: job {JobId} on {Nodes}, {Slots} workers")]
    public static partial void Inside(ILogger logger, string jobId, string nodes, int slots);

    [LoggerMessage(105, LogLevel.Warning, "Could not confirm that Slurm job {JobId} ended ({Reason}); it will be cancelled when this process exits")]
    public static partial void ReleaseUnconfirmed(ILogger logger, string jobId, string reason);
}
