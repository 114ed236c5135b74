namespace Pool;

/// <summary>One line a worker wrote to its standard output or standard error.</summary>
/// <param name="WorkerId">The pool's number for the worker.</param>
/// <param name="ProcessId">The worker's process id.</param>
/// <param name="IsError">Whether the line came from standard error.</param>
/// <param name="Text">The line, without its line break.</param>
public readonly record struct WorkerOutputLine(int WorkerId, int ProcessId, bool IsError, string Text)
{
    /// <summary>The line as the default handler writes it: <c>[worker 2#12345] text</c>.</summary>
    public override string ToString() => $"[worker {WorkerId}#{ProcessId}] {Text}";
}
