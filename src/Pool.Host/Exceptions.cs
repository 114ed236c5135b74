using System.Text;
using Pool.Contracts;

namespace Pool;

/// <summary>The base of the errors a task can end with because of the pool rather than the caller.</summary>
public abstract class ProcessPoolException : Exception
{
    private protected ProcessPoolException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The function threw in a worker, and the host could not rebuild the exception as its own type (most task
/// exceptions arrive as their own type: see the README's exception table). Exceptions cross the process boundary
/// as data, so this carries the remote exception's type name, message and stack text, and its inner exceptions as
/// <see cref="RemoteException"/>s; <see cref="Exception.Message"/> ends with why it was not rebuilt (the type does
/// not load in the host, is not public, has no constructor the host can call with what travelled, or its rebuilt
/// message differs). <see cref="Is{TException}"/> tests the original type. Python's pools re-raise the original
/// exception; so does this pool wherever it can.
/// </summary>
public sealed class RemoteException : ProcessPoolException
{
    private readonly IReadOnlyList<RemoteException> _inner;

    internal RemoteException(RemoteError error, long taskIndex, string? notRebuiltBecause = null)
        : this(error, taskIndex, Children(error, taskIndex), notRebuiltBecause)
    {
    }

    private RemoteException(RemoteError error, long taskIndex, IReadOnlyList<RemoteException> inner, string? notRebuiltBecause)
        : base($"{error.TypeName}: {error.Message}{(notRebuiltBecause is null ? string.Empty : $" (not rebuilt as {error.TypeName}: {notRebuiltBecause})")}", inner.Count > 0 ? inner[0] : null)
    {
        RemoteType = error.TypeName;
        RemoteAssembly = error.AssemblyName;
        RemoteMessage = error.Message;
        RemoteStackTrace = error.StackTrace;
        TaskIndex = taskIndex;
        NotRebuiltBecause = notRebuiltBecause;
        _inner = inner;
    }

    /// <summary>Why the exception did not arrive as its own type; null for an error the pool reports as a <see cref="RemoteException"/> itself (an initializer's).</summary>
    public string? NotRebuiltBecause { get; }

    /// <summary>Full name of the exception's type in the worker, e.g. <c>System.ArgumentException</c>.</summary>
    public string RemoteType { get; }

    /// <summary>Name of the assembly that defines <see cref="RemoteType"/>.</summary>
    public string RemoteAssembly { get; }

    /// <summary>The exception's own message, without the type name.</summary>
    public string RemoteMessage { get; }

    /// <summary>The stack trace in the worker, as text.</summary>
    public string? RemoteStackTrace { get; }

    /// <summary>The position of the failed task in its call's input (0 for <c>Apply</c>).</summary>
    public long TaskIndex { get; }

    /// <summary>All inner exceptions (an <see cref="AggregateException"/> has several); the first is <see cref="Exception.InnerException"/>.</summary>
    public IReadOnlyList<RemoteException> InnerExceptions => _inner;

    /// <summary>The original exception type, when the host can load it; else null.</summary>
    public Type? ExceptionType => Type.GetType($"{RemoteType}, {RemoteAssembly}", throwOnError: false);

    /// <summary>Whether the remote exception was a <typeparamref name="TException"/> (or derived from it).</summary>
    public bool Is<TException>()
        where TException : Exception =>
        ExceptionType is { } type ? typeof(TException).IsAssignableFrom(type) : typeof(TException).FullName == RemoteType;

    /// <inheritdoc />
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(GetType().FullName).Append(": ").Append(Message);
        if (RemoteStackTrace is { Length: > 0 } stack)
        {
            text.AppendLine().AppendLine("--- stack trace in the worker ---").Append(stack);
        }

        foreach (RemoteException inner in _inner)
        {
            text.AppendLine().Append(" ---> ").Append(inner.ToString());
        }

        if (StackTrace is { } local)
        {
            text.AppendLine().AppendLine("--- where the result was read ---").Append(local);
        }

        return text.ToString();
    }

    private static RemoteException[] Children(RemoteError error, long taskIndex) =>
        [.. error.InnerErrors.Select(inner => new RemoteException(inner, taskIndex, null))];
}

/// <summary>
/// The worker process running the task ended (a native crash, <see cref="Environment.FailFast(string)"/>,
/// a stack overflow, <see cref="Environment.Exit(int)"/>, a kill from outside). Only that task fails: the
/// worker is replaced and the other tasks carry on.
/// </summary>
public class WorkerCrashedException : ProcessPoolException
{
    internal WorkerCrashedException(int workerId, int processId, WorkerExit exit, IReadOnlyList<string> standardError, long taskIndex, string what, string? node = null)
        : this(Describe(workerId, processId, node, exit, standardError, what), workerId, processId, exit, standardError, taskIndex, node)
    {
    }

    private protected WorkerCrashedException(string message, int workerId, int processId, WorkerExit exit, IReadOnlyList<string> standardError, long taskIndex, string? node = null)
        : base(message)
    {
        WorkerId = workerId;
        ProcessId = processId;
        ExitCode = exit.ExitCode;
        Signal = exit.SignalName;
        StandardError = standardError;
        TaskIndex = taskIndex;
        Node = node;
    }

    /// <summary>The Slurm node the worker ran on (<see cref="SlurmLauncher"/>); null for a worker on this machine.</summary>
    public string? Node { get; }

    /// <summary>The pool's number for the worker.</summary>
    public int WorkerId { get; }

    /// <summary>The worker's process id.</summary>
    public int ProcessId { get; }

    /// <summary>The exit code as the runtime reports it; on Unix a death by signal N reads 128 + N.</summary>
    public int ExitCode { get; }

    /// <summary>The signal's name (SIGSEGV, SIGABRT, SIGKILL, ...) when the exit code says it died of one.</summary>
    public string? Signal { get; }

    /// <summary>The last lines the worker wrote to its standard error.</summary>
    public IReadOnlyList<string> StandardError { get; }

    /// <summary>The position of the task in its call's input (0 for <c>Apply</c>).</summary>
    public long TaskIndex { get; }

    private static string Describe(int workerId, int processId, string? node, WorkerExit exit, IReadOnlyList<string> standardError, string what)
    {
        var text = new StringBuilder();
        text.Append("Worker ").Append(workerId).Append(" (pid ").Append(processId).Append(node is null ? string.Empty : " on node " + node).Append(") ended with ").Append(exit.Describe())
            .Append(' ').Append(what).Append('.');
        if (exit.SignalName == "SIGKILL")
        {
            // The pool's own kills (a timeout, a cancellation, Terminate) end their tasks with their own exceptions, so
            // this one came from outside; the usual sender is the kernel's, and users of loky and Celery ask the same.
            text.Append(" The pool did not send it: SIGKILL usually comes from the kernel's out-of-memory killer (see `dmesg` or `journalctl -k`")
                .Append(node is null ? string.Empty : "; on a Slurm node, the job's memory limit")
                .Append(") or from a `kill -9`; if the task needs that much memory, give the machine fewer workers or the task less data.");
        }
        if (standardError.Count > 0)
        {
            text.Append(" Its last lines on stderr:").AppendLine();
            text.AppendJoin(Environment.NewLine, standardError.Select(line => "  " + line));
        }

        return text.ToString();
    }
}

/// <summary>
/// A worker on another machine (<see cref="SlurmLauncher"/>) went silent while it ran this task: nothing came from
/// it for <see cref="Silence"/> (its node went down, or the network to it was cut), so the pool gave it up, killed
/// what it could of it, and started a replacement; the tasks it had not started run on other workers. Whether the
/// task itself ran to its end is unknown. <see cref="WorkerCrashedException.Node"/> names the node.
/// </summary>
public sealed class WorkerLostException : WorkerCrashedException
{
    internal WorkerLostException(int workerId, int processId, string? node, TimeSpan silence, IReadOnlyList<string> standardError, long taskIndex, string function)
        : base(
            $"Task {taskIndex} of {function} failed: worker {workerId} (pid {processId}{(node is null ? string.Empty : " on node " + node)}) went silent while running it: " +
            $"nothing came from it for {silence.TotalSeconds:0.#} s, as when its node goes down or the network to it is cut. The pool gave it up and started a replacement; " +
            "the tasks it had not started run on other workers.",
            workerId,
            processId,
            new WorkerExit(-1),
            standardError,
            taskIndex,
            node)
    {
        Silence = silence;
    }

    /// <summary>How long nothing came from the worker before the pool gave it up.</summary>
    public TimeSpan Silence { get; }
}

/// <summary>
/// The worker's output stream to the pool was corrupt while this task was the one it owed a result for (a length
/// that was never delivered, a frame cut short, a result for a task it did not hold, a block nobody expected): the
/// pool killed and replaced the worker, this task fails, the tasks the worker had not started run elsewhere, and
/// results already received are kept. The usual cause is the task's function, or a native library it called,
/// writing to a file descriptor it does not own: the worker's pipe to the pool. <see cref="Detail"/> says what was wrong.
/// Python's pools have no equivalent: a corrupt pipe there breaks the pool or hangs it.
/// </summary>
public sealed class CorruptStreamException : WorkerCrashedException
{
    internal CorruptStreamException(int workerId, int processId, WorkerExit exit, IReadOnlyList<string> standardError, long taskIndex, string function, string detail)
        : base(
            $"Task {taskIndex} of {function} failed: the output stream of worker {workerId} (pid {processId}) to the pool was corrupt ({detail}), " +
            "so the pool killed and replaced the worker. The function, or a native library it called, may have written to a file descriptor it does not own " +
            "(the worker's pipe to the pool): write to stdout/stderr or files you open instead. Tasks the worker had not started run on another worker.",
            workerId,
            processId,
            exit,
            standardError,
            taskIndex)
    {
        Detail = detail;
    }

    /// <summary>What was wrong with the stream, as the pool saw it.</summary>
    public string Detail { get; }
}

/// <summary>
/// The task ran longer than its timeout (<see cref="ProcessPoolOptions.TaskTimeout"/> or the call's
/// <c>taskTimeout</c>), counted from when its worker began decoding its arguments: it was cancelled through its
/// token if it takes one, and its worker was killed with its process tree and replaced if it did not end within
/// <see cref="ProcessPoolOptions.CancellationGrace"/> (at once if it was still decoding its arguments).
/// Distinct from <see cref="TimeoutException"/>, which <see cref="AsyncResult{T}.Get(TimeSpan?)"/> throws when
/// only the wait timed out. Python: pebble's <c>TimeoutError</c>.
/// </summary>
public sealed class TaskTimeoutException : ProcessPoolException
{
    internal TaskTimeoutException(TimeSpan timeout, long taskIndex, string function, int workerId, int processId, bool killed, bool decoding = false, bool inProcess = false)
        : base($"Task {taskIndex} of {function} ran longer than its timeout of {Format(timeout)} on worker {workerId} (pid {processId}); " +
            (decoding ? "the worker was still decoding its arguments (the constructor or a serializer callback of an argument's type did not return), so it was killed and replaced."
                : killed ? "the worker was killed and replaced."
                : inProcess ? "it ran in this process (InProcess), where nothing can be stopped, so it failed with the timeout when it ended (its token, if it took one, was cancelled)."
                : "it was cancelled through its token."))
    {
        Timeout = timeout;
        TaskIndex = taskIndex;
        WorkerId = workerId;
        ProcessId = processId;
    }

    /// <summary>The timeout the task exceeded.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The position of the task in its call's input (0 for <c>Apply</c>).</summary>
    public long TaskIndex { get; }

    /// <summary>The pool's number for the worker that ran it.</summary>
    public int WorkerId { get; }

    /// <summary>The process id of the worker that ran it.</summary>
    public int ProcessId { get; }

    private static string Format(TimeSpan timeout) =>
        timeout.TotalSeconds >= 1 ? $"{timeout.TotalSeconds:0.###} s" : $"{timeout.TotalMilliseconds:0.#} ms";
}

/// <summary>
/// The pool's initializer (<see cref="ProcessPoolOptions.WithInitializer(Action)"/>) failed in
/// <see cref="ProcessPoolOptions.InitializerAttempts"/> workers in a row (it threw, its worker died, or it did not
/// finish within <see cref="ProcessPoolOptions.StartTimeout"/>), so the pool stopped rather than start workers
/// forever (Python's pool respawns them endlessly). Every unfinished task fails with it;
/// <see cref="Exception.InnerException"/> is the last failure, as a <see cref="RemoteException"/>: the
/// initializer's exception, or a <see cref="TimeoutException"/> for one that did not finish.
/// </summary>
public sealed class InitializerException : ProcessPoolException
{
    internal InitializerException(string initializer, int attempts, RemoteException error)
        : this($"The pool's initializer {initializer} failed in {attempts} worker{(attempts == 1 ? string.Empty : "s")} in a row, so the pool stopped: {error.Message}", initializer, error)
    {
    }

    private InitializerException(string message, string initializer, RemoteException error)
        : base(message, error)
    {
        Initializer = initializer;
        RemoteError = error;
    }

    /// <summary>The initializer, as the pool names functions.</summary>
    public string Initializer { get; }

    /// <summary>What the initializer threw, in the worker.</summary>
    public RemoteException RemoteError { get; }

    /// <summary>A fresh instance for each task it fails, so that each throw has its own stack trace.</summary>
    internal InitializerException Copy() => new(Message, Initializer, RemoteError);
}

/// <summary>The pool was terminated (or disposed) before the task finished.</summary>
public sealed class PoolTerminatedException : ProcessPoolException
{
    internal PoolTerminatedException(string message)
        : base(message)
    {
    }
}

/// <summary>A worker could not be started: the message says what was tried.</summary>
public sealed class WorkerStartException : ProcessPoolException
{
    internal WorkerStartException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>How a worker process ended.</summary>
/// <param name="ExitCode">The exit code; 128 + N for death by signal N on Unix.</param>
internal sealed record WorkerExit(int ExitCode)
{
    private static readonly Dictionary<int, string> Signals = new()
    {
        [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [5] = "SIGTRAP", [6] = "SIGABRT", [7] = "SIGBUS",
        [8] = "SIGFPE", [9] = "SIGKILL", [11] = "SIGSEGV", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
    };

    /// <summary>The signal that killed the process, read from a Unix exit code of 128 + N.</summary>
    public string? SignalName => !OperatingSystem.IsWindows() && ExitCode > 128 && Signals.TryGetValue(ExitCode - 128, out string? name) ? name : null;

    public string Describe() => SignalName is { } signal ? $"exit code {ExitCode} ({signal})" : $"exit code {ExitCode}";
}
