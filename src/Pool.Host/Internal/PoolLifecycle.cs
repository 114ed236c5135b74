namespace Pool.Internal;

/// <summary>The pool's states, as multiprocessing has them: RUN, then CLOSE or TERMINATE.</summary>
internal enum PoolState
{
    /// <summary>Takes new work.</summary>
    Running,

    /// <summary><see cref="ProcessPool.Close"/> was called: queued work finishes, no new work is taken.</summary>
    Closed,

    /// <summary>Terminated, disposed, or broken: nothing runs any more.</summary>
    Terminated,
}

/// <summary>The state machine RUN → CLOSE → TERMINATE, and the errors that name the state.</summary>
internal sealed class PoolLifecycle
{
    private int _state;
    private string? _terminatedBecause;

    public PoolState State => (PoolState)Volatile.Read(ref _state);

    /// <summary>Why the pool stopped, when it stopped on its own (workers that cannot start).</summary>
    public string? TerminatedBecause => Volatile.Read(ref _terminatedBecause);

    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public void EnsureRunning(string operation)
    {
        switch (State)
        {
            case PoolState.Running:
                return;
            case PoolState.Closed:
                throw new InvalidOperationException(
                    $"Cannot call {operation}: the pool is closed. Close() lets queued work finish and takes no new work; create a new ProcessPool to run more.");
            default:
                throw new InvalidOperationException(TerminatedBecause is { } reason
                    ? $"Cannot call {operation}: the pool stopped because {reason}"
                    : $"Cannot call {operation}: the pool is terminated (Terminate() or Dispose() was called); create a new ProcessPool to run more.");
        }
    }

    /// <summary>RUN → CLOSE; false when the pool was not running.</summary>
    public bool TryClose() => Interlocked.CompareExchange(ref _state, (int)PoolState.Closed, (int)PoolState.Running) == (int)PoolState.Running;

    /// <summary>Any state → TERMINATE; true only the first time.</summary>
    public bool TryTerminate(string? because = null)
    {
        if (Interlocked.Exchange(ref _state, (int)PoolState.Terminated) == (int)PoolState.Terminated)
        {
            return false;
        }

        if (because is not null)
        {
            Volatile.Write(ref _terminatedBecause, because);
        }

        return true;
    }

    /// <exception cref="InvalidOperationException">The pool is still running.</exception>
    public void EnsureCanJoin()
    {
        if (State == PoolState.Running)
        {
            throw new InvalidOperationException(
                "Join() waits for the workers to exit, which they do only after Close() or Terminate(); call one of them first.");
        }
    }
}
