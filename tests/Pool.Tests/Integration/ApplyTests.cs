using CliWrap.Buffered;

namespace Pool.Tests.Integration;

public class ApplyTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task Apply_returns_the_value_computed_in_a_worker()
    {
        await Task.Yield();
        Pool.Apply(Functions.Square, 12).Should().Be(144);
        Pool.Apply(Functions.ProcessIdOfCaller).Should().NotBe(Environment.ProcessId);
        Pool.Apply(Functions.Concat, "n", 5).Should().Be("n5");
        Pool.Apply(Functions.Add3, 1, 2, 3).Should().Be(6);
        Pool.Apply(Functions.Add4, 1.0, 2.0, 3.0, 4.5).Should().Be(10.5);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_task_can_run_a_pool_of_its_own()
    {
        int[] squares = await Pool.ApplyAsync(Functions.NestedSquares, 5);
        squares.Should().Equal(0, 1, 4, 9, 16);
    }

    [Fact(Timeout = 60_000)]
    public async Task ApplyAsync_is_awaitable_and_reports_ready_and_successful()
    {
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Square, 5);
        (await result).Should().Be(25);
        result.Ready.Should().BeTrue();
        result.Successful.Should().BeTrue();
    }

    [Fact(Timeout = 60_000)]
    public async Task Get_with_a_timeout_throws_and_leaves_the_task_running()
    {
        await Task.Yield();
        // 5 s: the three short waits below must all fall before it ends, even on a loaded machine that deschedules this
        // thread for a second (400 ms failed in 1 of 8 full runs under load).
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Sleep, 5000);
        result.Invoking(r => r.Successful).Should().Throw<InvalidOperationException>().WithMessage("*not ready*");
        result.Invoking(r => r.Get(TimeSpan.FromMilliseconds(20))).Should().Throw<TimeoutException>();
        result.Wait(TimeSpan.FromMilliseconds(1)).Should().BeFalse();
        result.Get(TestPools.Bound).Should().Be(5000);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_failure_is_raised_by_get_and_makes_successful_false()
    {
        await Task.Yield();
        AsyncResult<int> result = Pool.ApplyAsync(Functions.FailOnSeven, 7);
        result.Wait(TestPools.Bound).Should().BeTrue();
        result.Successful.Should().BeFalse();
        result.Invoking(r => r.Get()).Should().Throw<ArgumentException>();
    }

    [Fact(Timeout = 60_000)]
    public async Task The_callback_runs_once_before_the_result_is_ready()
    {
        await Task.Yield();
        int calls = 0;
        bool readyInCallback = true;
        // The callback may run before ApplyAsync returns: it waits for the result to be known.
        var returned = new TaskCompletionSource<AsyncResult<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Square, 3, callback: value =>
        {
            Interlocked.Increment(ref calls);
            readyInCallback = returned.Task.Result.Ready;
            value.Should().Be(9);
        });
        returned.SetResult(result);

        result.Get(TestPools.Bound).Should().Be(9);
        calls.Should().Be(1);
        readyInCallback.Should().BeFalse();
    }

    /// <summary>
    /// Get and Wait waited for the callback's thread-pool work item: eight of them on a thread pool capped at four threads
    /// never ended. A Get or Wait without a timeout that finds the callback still queued runs it itself. Run in a host
    /// process of its own (tests/Pool.TestHost), whose thread pool it caps. Found by a sixth audit.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task Get_runs_a_queued_callback_when_the_thread_pool_has_no_thread_for_it()
    {
        BufferedCommandResult result = await TestPools.RunTestHostAsync("starved-get");

        result.StandardOutput.Trim().Should().Be("done 8", result.StandardError);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_error_callback_runs_on_failure_and_not_the_callback()
    {
        await Task.Yield();
        Exception? seen = null;
        AsyncResult<int> result = Pool.ApplyAsync(Functions.FailOnSeven, 7, callback: _ => throw new InvalidOperationException("must not run"), errorCallback: e => seen = e);
        result.Invoking(r => r.Get(TestPools.Bound)).Should().Throw<ArgumentException>();
        seen.Should().BeOfType<ArgumentException>();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_callback_that_throws_becomes_the_result_and_hangs_nothing()
    {
        await Task.Yield();
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Square, 2, callback: _ => throw new FormatException("callback broke"));
        result.Invoking(r => r.Get(TestPools.Bound)).Should().Throw<FormatException>().WithMessage("callback broke");
        Pool.Apply(Functions.Square, 4).Should().Be(16);

        AsyncResult<int> failing = Pool.ApplyAsync(Functions.FailOnSeven, 7, errorCallback: _ => throw new FormatException("error callback broke"));
        failing.Invoking(r => r.Get(TestPools.Bound)).Should().Throw<AggregateException>()
            .Which.InnerExceptions.Should().SatisfyRespectively(
                e => e.Should().BeOfType<FormatException>(),
                e => e.Should().BeOfType<ArgumentException>());
    }

    [Fact(Timeout = 60_000)]
    public async Task Many_applies_from_many_threads_all_complete()
    {
        int[] results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => Pool.ApplyAsync(Functions.Increment, i).Task))).Within();
        results.Should().Equal(Enumerable.Range(1, 200));
    }
}
