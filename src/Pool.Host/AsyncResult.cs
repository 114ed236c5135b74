using System.Runtime.CompilerServices;

namespace Pool;

/// <summary>
/// The pending result of <c>ApplyAsync</c>, as multiprocessing's <c>AsyncResult</c>: <see cref="Get"/>,
/// <see cref="Wait"/>, <see cref="Ready"/>, <see cref="Successful"/>, and awaitable. Exactly one of the
/// callbacks runs, on a thread-pool thread, before the result is ready. A callback that throws makes its
/// exception the result (as CPython does since gh-83371); if the error callback throws, the result is an
/// <see cref="AggregateException"/> of its exception and the task's.
/// </summary>
/// <typeparam name="T">The function's result type.</typeparam>
public sealed class AsyncResult<T>
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<T>? _callback;
    private readonly Action<Exception>? _errorCallback;

    internal AsyncResult(Action<T>? callback, Action<Exception>? errorCallback)
    {
        _callback = callback;
        _errorCallback = errorCallback;
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
    public T Get(TimeSpan? timeout = null)
    {
        if (!Wait(timeout))
        {
            throw new TimeoutException($"The result was not ready within {timeout}; the task is still running and Get can be called again.");
        }

        return _completion.Task.GetAwaiter().GetResult();
    }

    /// <summary>Waits until the result is ready (multiprocessing: <c>wait(timeout)</c>).</summary>
    /// <param name="timeout">As for <see cref="Get"/>.</param>
    /// <returns>Whether it is ready.</returns>
    public bool Wait(TimeSpan? timeout = null)
    {
        Task<T> task = _completion.Task;
        if (task.IsCompleted)
        {
            return true;
        }

        try
        {
            TimeSpan wait = timeout ?? System.Threading.Timeout.InfiniteTimeSpan;
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
        if (_callback is null)
        {
            _completion.TrySetResult(value);
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(
            static state =>
            {
                (AsyncResult<T> result, T value) = state;
                try
                {
                    result._callback!(value);
                }
                catch (Exception e)
                {
                    // The callback's failure becomes the result, so that it is seen and nothing waits forever.
                    result._completion.TrySetException(e);
                    return;
                }

                result._completion.TrySetResult(value);
            },
            (this, value),
            preferLocal: false);
    }

    /// <summary>Fails the result: <paramref name="stopped"/> when the call was stopped (cancelled, terminated), so that
    /// an <see cref="OperationCanceledException"/> cancels it; an exception the function threw (even an
    /// <see cref="OperationCanceledException"/> of its own) faults it.</summary>
    internal void SetError(Exception error, bool stopped)
    {
        if (_errorCallback is null)
        {
            Complete(error, stopped);
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(
            static state =>
            {
                (AsyncResult<T> result, Exception error, bool stopped) = state;
                try
                {
                    result._errorCallback!(error);
                }
                catch (Exception e)
                {
                    // As for the callback; the task's own error is kept beside the callback's.
                    result._completion.TrySetException(new AggregateException("The error callback threw while handling the task's exception.", e, error));
                    return;
                }

                result.Complete(error, stopped);
            },
            (this, error, stopped),
            preferLocal: false);
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
