namespace Pool.Tests.Unit;

/// <summary>
/// <see cref="AsyncResult{T}"/> alone: a result and a stop that race (the call cancelled, or the pool terminated, as the
/// result arrives) end it once, with one callback; a Get or Wait from its own callback refuses to wait for itself.
/// </summary>
public class AsyncResultTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_stop_after_the_result_runs_no_error_callback_and_the_result_stays_successful()
    {
        int callbacks = 0, errorCallbacks = 0;
        var result = new AsyncResult<int>(_ => Interlocked.Increment(ref callbacks), _ => Interlocked.Increment(ref errorCallbacks));

        result.SetResult(7);
        result.SetError(new PoolTerminatedException("The pool was terminated."), stopped: true);

        (await result.Task.WaitAsync(Bound)).Should().Be(7);
        result.Successful.Should().BeTrue();
        callbacks.Should().Be(1);
        errorCallbacks.Should().Be(0);
    }

    [Fact]
    public async Task A_result_after_a_stop_runs_no_callback_and_the_result_stays_cancelled()
    {
        int callbacks = 0, errorCallbacks = 0;
        var result = new AsyncResult<int>(_ => Interlocked.Increment(ref callbacks), _ => Interlocked.Increment(ref errorCallbacks));

        result.SetError(new OperationCanceledException(), stopped: true);
        result.SetResult(7);

        await result.Invoking(r => r.Task.WaitAsync(Bound)).Should().ThrowAsync<OperationCanceledException>();
        result.Successful.Should().BeFalse();
        errorCallbacks.Should().Be(1);
        callbacks.Should().Be(0);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task With_one_callback_or_both_a_racing_result_and_stop_end_it_once(bool withCallback, bool withErrorCallback)
    {
        for (int i = 0; i < 1_000; i++)
        {
            int calls = 0;
            var result = new AsyncResult<int>(
                withCallback ? _ => Interlocked.Increment(ref calls) : null,
                withErrorCallback ? _ => Interlocked.Increment(ref calls) : null);
            using var start = new Barrier(2);
            Task stop = Task.Run(() =>
            {
                start.SignalAndWait();
                result.SetError(new OperationCanceledException(), stopped: true);
            });
            start.SignalAndWait();
            result.SetResult(i);
            await stop.WaitAsync(Bound);
            await result.Task.ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(Bound);

            int expected = result.Successful ? (withCallback ? 1 : 0) : (withErrorCallback ? 1 : 0);
            Volatile.Read(ref calls).Should().Be(expected, $"one outcome counts (round {i}, successful: {result.Successful})");
        }
    }

    [Fact]
    public async Task Get_or_Wait_from_the_result_s_own_callback_throws_rather_than_wait_for_itself()
    {
        AsyncResult<int>? result = null;
        var seen = new List<string>();
        using var ready = new ManualResetEventSlim();
        result = new AsyncResult<int>(
            _ =>
            {
                ready.Wait(Bound);
                foreach (Action wait in new Action[] { () => result!.Get(), () => result!.Get(TimeSpan.FromSeconds(5)), () => result!.Wait() })
                {
                    try
                    {
                        wait();
                        seen.Add("returned");
                    }
                    catch (InvalidOperationException e)
                    {
                        seen.Add(e.Message);
                    }
                }
            },
            null);
        ready.Set();

        result.SetResult(3);

        (await result.Task.WaitAsync(Bound)).Should().Be(3, "the callback returned, so the result is ready");
        seen.Should().HaveCount(3).And.AllSatisfy(m => m.Should().Contain("own callback").And.Contain("wait for itself"));
    }

    [Fact]
    public async Task Get_with_a_timeout_while_the_callback_runs_says_the_task_has_ended()
    {
        using var release = new ManualResetEventSlim();
        var result = new AsyncResult<int>(_ => release.Wait(Bound), null);
        result.SetResult(5);

        result.Invoking(r => r.Get(TimeSpan.FromMilliseconds(50))).Should().Throw<TimeoutException>()
            .WithMessage("*the task has ended and its callback is still running*");
        release.Set();
        (await result.Task.WaitAsync(Bound)).Should().Be(5);
    }
}
