using System.Runtime.CompilerServices;

namespace Pool;

/// <summary>
/// The pending result of <c>ApplyAsync</c>, as multiprocessing's <c>AsyncResult</c>: <see cref="Get"/>,
/// <see cref="Wait"/>, <see cref="Ready"/>, <see cref="Successful"/>, and awaitable. Exactly one of the
/// callbacks runs, on a thread-pool thread, before the result is ready (or on the thread of a <see cref="Get"/> or
/// <see cref="Wait"/> without a timeout that finds it still waiting for one, so that a starved thread pool cannot
/// leave such a wait blocked). A callback that throws makes its
/// exception the result (as CPython does since gh-83371); if the error callback throws, the result is an
/// <see cref="AggregateException"/> of its exception and the task's.
/// </summary>
/// <typeparam name="T">The function's result type.</typeparam>
public sealed class AsyncResult<T>
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<T>? _callback;
    private readonly Action<Exception>? _errorCallback;
    // The outcome a callback is queued with, and who runs it (0 none queued, 1 queued, 2 claimed: QueueCallback).
    private T? _value;
    private Exception? _error;
    private bool _stopped;
    private int _outcome;
    private int _claim;
    // Set when a callback is queued: what a Get without a timeout waits for besides the result (null without callbacks).
    private readonly TaskCompletionSource? _queued;
    private static readonly TimeSpan StarvedAfter = TimeSpan.FromMilliseconds(50);

    // The result whose callback runs on this thread, if any: a Get or Wait on it from there would wait for itself.
    [ThreadStatic]
    private static AsyncResult<T>? t_inCallback;

    internal AsyncResult(Action<T>? callback, Action<Exception>? errorCallback)
    {
        _callback = callback;
        _errorCallback = errorCallback;
        _queued = callback is null && errorCallback is null ? null : new TaskCompletionSource();
    }

    /// <summary>The result as a task.</summary>
    public Task<T> Task => _completion.Task;

    /// <summary>Whether the task has finished (multiprocessing: <c>ready()</c>).</summary>
    public bool Ready => _completion.Task.IsCompleted;

    /// <summary>Whether the task finished without an exception (multiprocessing: <c>successful()</c>).</summary>
    /// <exception cref="InvalidOperationException">The task is not ready (multiprocessing raises ValueError).</exception>
    public bool Successful => Ready
        ? _completion.Task.IsCompletedSuccessfully
        : throw new InvalidOperationException("The result is not ready yet: check Ready, or call Wait() first.");

    /// <summary>Waits for the result and returns it, or throws the task's exception (multiprocessing: <c>get(timeout)</c>).</summary>
    /// <param name="timeout">How long to wait; null (or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>) waits as long
    /// as it takes; zero or any other negative value does not wait, as in Python.</param>
    /// <exception cref="TimeoutException">Not ready within <paramref name="timeout"/>; the task goes on running.</exception>
    /// <exception cref="InvalidOperationException">Called from this result's own callback, before it is ready (it would wait for itself).</exception>
    public T Get(TimeSpan? timeout = null)
    {
        if (!Wait(timeout))
        {
            throw new TimeoutException(_queued?.Task.IsCompleted == true
                ? $"The result was not ready within {timeout}: the task has ended and its callback is still running; Get can be called again."
                : $"The result was not ready within {timeout}; the task is still running and Get can be called again.");
        }

        return _completion.Task.GetAwaiter().GetResult();
    }

    /// <summary>Waits until the result is ready (multiprocessing: <c>wait(timeout)</c>).</summary>
    /// <param name="timeout">As for <see cref="Get"/>.</param>
    /// <returns>Whether it is ready.</returns>
    /// <exception cref="InvalidOperationException">Called from this result's own callback, before it is ready (it would wait for itself).</exception>
    public bool Wait(TimeSpan? timeout = null)
    {
        Task<T> task = _completion.Task;
        if (task.IsCompleted)
        {
            return true;
        }

        if (t_inCallback == this)
        {
            // It is ready only once this callback returns: waiting here would wait for itself, forever.
            throw new InvalidOperationException(
                "Get or Wait was called from this result's own callback, which runs before the result is ready: it would wait for itself. "
                + "Use the value (or exception) the callback receives.");
        }

        TimeSpan wait = timeout ?? System.Threading.Timeout.InfiniteTimeSpan;
        try
        {
            if (wait == System.Threading.Timeout.InfiniteTimeSpan && _queued is { } queued && !task.Wait(StarvedAfter))
            {
                // The thread pool has not run the callback for a while (or the task is still running): once the outcome
                // is in and its callback queued, run it here rather than wait for a thread-pool thread. (Waiting first
                // keeps the common path as fast as it was: handing every callback to its waiter cost about 20 µs a call.)
                System.Threading.Tasks.Task.WaitAny(task, queued.Task);
                RunCallback();
            }

            // Task.Wait takes up to int.MaxValue ms (24.8 days): a longer timeout waits as long as it takes.
            return task.Wait(
                wait == System.Threading.Timeout.InfiniteTimeSpan || wait.TotalMilliseconds > int.MaxValue ? System.Threading.Timeout.InfiniteTimeSpan
                : wait < TimeSpan.Zero ? TimeSpan.Zero
                : wait);
        }
        catch (AggregateException)
        {
            // Wait throws when the task failed; failed is ready.
            return true;
        }
    }

    /// <summary>Makes the result awaitable.</summary>
    public TaskAwaiter<T> GetAwaiter() => _completion.Task.GetAwaiter();

    internal void SetResult(T value)
    {
        if (!TakeOutcome())
        {
            return;
        }

        if (_callback is null)
        {
            _completion.TrySetResult(value);
            return;
        }

        _value = value;
        QueueCallback();
    }

    /// <summary>Fails the result: <paramref name="stopped"/> when the call was stopped (cancelled, terminated), so that
    /// an <see cref="OperationCanceledException"/> cancels it; an exception the function threw (even an
    /// <see cref="OperationCanceledException"/> of its own) faults it.</summary>
    internal void SetError(Exception error, bool stopped)
    {
        if (!TakeOutcome())
        {
            return;
        }

        if (_errorCallback is null)
        {
            Complete(error, stopped);
            return;
        }

        _error = error;
        _stopped = stopped;
        QueueCallback();
    }

    /// <summary>
    /// Whether this is the task's first outcome: a result and a stop (the call cancelled, the pool terminated) can race,
    /// and only the first counts, as a <see cref="TaskCompletionSource{T}"/>'s first TrySet does: exactly one callback.
    /// </summary>
    private bool TakeOutcome() => Interlocked.Exchange(ref _outcome, 1) == 0;

    // The callback runs on a thread-pool thread, or on the thread of a Get or Wait without a timeout that finds it
    // still queued: that thread would only wait for it, and on a starved (or capped) thread pool, with every thread
    // blocked in such a Get, nothing else would ever run it. Whoever claims it first (_claim 1 → 2) runs it.
    private void QueueCallback()
    {
        Volatile.Write(ref _claim, 1);
        _queued!.TrySetResult();
        ThreadPool.UnsafeQueueUserWorkItem(static result => result.RunCallback(), this, preferLocal: false);
    }

    private void RunCallback()
    {
        if (Interlocked.CompareExchange(ref _claim, 2, 1) != 1)
        {
            return;
        }

        AsyncResult<T>? outer = t_inCallback;
        t_inCallback = this;
        try
        {
            RunClaimedCallback();
        }
        finally
        {
            t_inCallback = outer;
        }
    }

    private void RunClaimedCallback()
    {
        if (_error is not { } error)
        {
            try
            {
                _callback!(_value!);
            }
            catch (Exception e)
            {
                // The callback's failure becomes the result, so that it is seen and nothing waits forever.
                _completion.TrySetException(e);
                return;
            }

            _completion.TrySetResult(_value!);
            return;
        }

        try
        {
            _errorCallback!(error);
        }
        catch (Exception e)
        {
            // As for the callback; the task's own error is kept beside the callback's.
            _completion.TrySetException(new AggregateException("The error callback threw while handling the task's exception.", e, error));
            return;
        }

        Complete(error, _stopped);
    }

    private void Complete(Exception error, bool stopped)
    {
        if (stopped && error is OperationCanceledException canceled)
        {
            _completion.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            _completion.TrySetException(error);
        }
    }
}
