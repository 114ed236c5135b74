using Microsoft.Extensions.Logging;

namespace Pool.Internal;

/// <summary>
/// Everything the pool logs through <see cref="ProcessPoolOptions.Logger"/>, as source-generated methods with
/// structured fields (WorkerId, ProcessId, ExitCode, Signal, TaskIndex): no formatting unless the level is on.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Worker {WorkerId}#{ProcessId} started")]
    public static partial void WorkerStarted(ILogger logger, int workerId, int processId);

    [LoggerMessage(2, LogLevel.Debug, "Worker {WorkerId}#{ProcessId} exited as the pool asked, with exit code {ExitCode}")]
    public static partial void WorkerExited(ILogger logger, int workerId, int processId, int exitCode);

    [LoggerMessage(3, LogLevel.Warning, "Worker {WorkerId}#{ProcessId} was lost with exit code {ExitCode}, signal {Signal}, holding {OrphanChunks} chunks: {Reason}{StandardError}")]
    private static partial void WorkerCrashed(ILogger logger, int workerId, int processId, int exitCode, string signal, int orphanChunks, string reason, string standardError);

    /// <summary>A worker was lost: one Warning entry, with the last lines of its stderr (what a FailFast or an unhandled exception printed), not one per line.</summary>
    public static void WorkerCrashed(ILogger logger, int workerId, int processId, int exitCode, string signal, int orphanChunks, string reason, IReadOnlyList<string> standardErrorTail)
    {
        if (logger.IsEnabled(LogLevel.Warning))
        {
            WorkerCrashed(logger, workerId, processId, exitCode, signal, orphanChunks, reason,
                standardErrorTail.Count == 0 ? string.Empty : ". The end of its stderr:" + Environment.NewLine + string.Join(Environment.NewLine, standardErrorTail));
        }
    }

    [LoggerMessage(4, LogLevel.Information, "Replacement worker {WorkerId}#{ProcessId} started")]
    public static partial void ReplacementStarted(ILogger logger, int workerId, int processId);

    [LoggerMessage(5, LogLevel.Error, "A replacement worker failed to start (attempt {Attempt} of {Attempts})")]
    public static partial void ReplacementFailed(ILogger logger, Exception exception, int attempt, int attempts);

    [LoggerMessage(6, LogLevel.Warning, "Task {TaskIndex} of {Function} on worker {WorkerId}#{ProcessId} passed its timeout of {Timeout}; {Action}")]
    public static partial void TaskTimedOut(ILogger logger, long taskIndex, string function, int workerId, int processId, TimeSpan timeout, string action);

    [LoggerMessage(7, LogLevel.Error, "The initializer failed on worker {WorkerId}#{ProcessId}: {ErrorType}: {ErrorMessage}")]
    public static partial void InitializerFailed(ILogger logger, int workerId, int processId, string errorType, string errorMessage);

    [LoggerMessage(8, LogLevel.Error, "The pool is broken and stopped: {Reason}")]
    public static partial void PoolBroken(ILogger logger, Exception exception, string reason);

    [LoggerMessage(9, LogLevel.Information, "[worker {WorkerId}#{ProcessId}] {Text}")]
    public static partial void WorkerStandardOutput(ILogger logger, int workerId, int processId, string text);

    // Information, as stdout: a crash's stderr comes once more, as its tail, in the WorkerCrashed warning.
    [LoggerMessage(10, LogLevel.Information, "[worker {WorkerId}#{ProcessId}] {Text}")]
    public static partial void WorkerStandardError(ILogger logger, int workerId, int processId, string text);

    [LoggerMessage(11, LogLevel.Warning, "Refused a connection to worker {WorkerId}'s pipe from pid {PeerProcessId} (uid {PeerUserId}): {Reason}. It received nothing of the pool, which goes on waiting for its worker")]
    public static partial void StrayConnection(ILogger logger, int workerId, string peerProcessId, string peerUserId, string reason);

    [LoggerMessage(12, LogLevel.Warning, "Refused a connection to worker {WorkerId}'s port from {Peer}: {Reason}. It received at most the TLS handshake and a random challenge, and the pool goes on waiting for its worker")]
    public static partial void StrayNetworkConnection(ILogger logger, int workerId, string peer, string reason);

    /// <summary>A worker's output line, at Information (stdout and stderr, as events 9 and 10).</summary>
    public static void WorkerOutput(ILogger logger, WorkerOutputLine line)
    {
        if (line.IsError)
        {
            WorkerStandardError(logger, line.WorkerId, line.ProcessId, line.Text);
        }
        else
        {
            WorkerStandardOutput(logger, line.WorkerId, line.ProcessId, line.Text);
        }
    }
}
