namespace Pool.Tests.Integration;

/// <summary>joblib's list of calls: <c>Call.Of</c> builds them, <c>Run</c> and its variants run them in real workers.</summary>
public class RunTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    private static Call<long>[] Mixed(int count) =>
        [.. Enumerable.Range(0, count).Select(i => (i % 3) switch
        {
            0 => Call.Of(Functions.FailSometimes, i + 1),
            1 => Call.Of(Widen, i),
            _ => Call.Of(AddLong, i, 1000L),
        })];

    private static long Expected(int i) => (i % 3) switch
    {
        0 => (i + 1) * 3L,
        1 => i,
        _ => i + 1000L,
    };

    public static long Widen(int x) => x;

    public static long AddLong(int x, long y) => x + y;

    public static Task<long> AddLater(int x, int y) => Task.FromResult((long)x + y);

    [Theory(Timeout = 60_000)]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(5)]
    public async Task Run_returns_the_results_of_calls_of_different_functions_in_call_order(int? chunkSize)
    {
        long[] results = await Pool.RunAsync(Mixed(60), chunkSize).Within();
        results.Should().Equal(Enumerable.Range(0, 60).Select(Expected));
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_runs_the_calls_in_the_worker_processes()
    {
        int[] processes = await Pool.RunAsync(Enumerable.Range(0, 20).Select(i => Call.Of(Functions.ProcessId, i)), chunkSize: 1).Within();
        processes.Should().NotContain(Environment.ProcessId);
        processes.Distinct().Should().BeSubsetOf(Pool.ProcessIds);
    }

    [Fact]
    public void Run_blocks_and_runs_calls_of_every_arity_and_async_functions()
    {
        long[] results = Pool.Run<long>(
        [
            Call.Of(() => 7L),
            Call.Of(Widen, 1),
            Call.Of(AddLong, 2, 3L),
            Call.Of((int a, int b, int c) => (long)a + b + c, 1, 2, 3),
            Call.Of((int a, int b, int c, int d) => (long)a * b * c * d, 1, 2, 3, 4),
            Call.Of(AddLater, 20, 22),
        ]);

        results.Should().Equal(7L, 1L, 5L, 6L, 24L, 42L);
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_of_no_calls_returns_an_empty_array()
    {
        (await Pool.RunAsync(Array.Empty<Call<int>>()).Within()).Should().BeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_throws_the_first_failure_in_call_order_once_every_call_has_run()
    {
        Call<int>[] calls = [Call.Of(Functions.Square, 2), Call.Of(Functions.FailOnSeven, 7), Call.Of(Functions.Square, 3)];
        Func<Task> run = () => Pool.RunAsync(calls);
        var error = (await run.Should().ThrowAsync<ArgumentException>()).Which;
        error.Message.Should().StartWith("seven is not allowed (got 7)");
    }

    [Fact(Timeout = 60_000)]
    public async Task RunOutcomes_gives_every_call_its_value_or_exception_at_its_position()
    {
        Outcome<long>[] outcomes = await Pool.RunOutcomesAsync(Mixed(30)).Within();

        outcomes.Select(o => o.Index).Should().Equal(Enumerable.Range(0, 30).Select(i => (long)i));
        // FailSometimes fails on 97's multiples only: i + 1 is never one below 30, so all succeed but those set to fail below.
        outcomes.Should().OnlyContain(o => o.Succeeded && o.Value == Expected((int)o.Index));

        Outcome<int>[] failing = await Pool.RunOutcomesAsync([Call.Of(Functions.FailOnSeven, 7), Call.Of(Functions.Square, 4)]).Within();
        failing[0].Exception.Should().BeOfType<ArgumentException>();
        failing[1].Value.Should().Be(16);
    }

    [Fact(Timeout = 60_000)]
    public async Task RunAsCompleted_yields_every_call_once_with_its_position_and_failures_as_outcomes()
    {
        Call<long>[] calls = [.. Mixed(40), Call.Of(Functions.FailSometimes, 97)];
        var seen = new List<Outcome<long>>();
        await foreach (Outcome<long> outcome in Pool.RunAsCompletedAsync(calls))
        {
            seen.Add(outcome);
        }

        seen.Select(o => o.Index).Should().BeEquivalentTo(Enumerable.Range(0, 41).Select(i => (long)i));
        seen.Where(o => o.Index < 40).Should().OnlyContain(o => o.Succeeded && o.Value == Expected((int)o.Index));
        seen.Single(o => o.Index == 40).Exception.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("no 97");
    }

    [Fact]
    public void RunAsCompleted_blocking_yields_the_calls_of_one_function()
    {
        Outcome<int>[] outcomes = [.. Pool.RunAsCompleted(Enumerable.Range(0, 50).Select(i => Call.Of(Functions.Square, i)))];
        outcomes.Select(o => o.Index).Should().BeEquivalentTo(Enumerable.Range(0, 50).Select(i => (long)i));
        outcomes.Should().OnlyContain(o => o.Value == o.Index * o.Index);
    }

    [Fact(Timeout = 60_000)]
    public async Task Run_is_cancelled_by_its_token_and_the_pool_goes_on()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { CancellationGrace = TimeSpan.FromMilliseconds(200) });
        using var cancel = new CancellationTokenSource();
        Task<int[]> run = pool.RunAsync(
            [.. Enumerable.Range(0, 20).Select(_ => Call.Of(Functions.Sleep, 20_000)), Call.Of(Functions.Square, 3)],
            chunkSize: 1,
            cancellationToken: cancel.Token);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(200));

        await run.Invoking(r => r.Within()).Should().ThrowAsync<OperationCanceledException>();
        (await pool.RunAsync([Call.Of(Functions.Square, 5)]).Within()).Should().Equal(25);
    }

    [Fact(Timeout = 90_000)]
    public async Task Cancelling_a_RunAsCompleted_of_several_functions_stops_its_running_calls_and_frees_the_workers()
    {
        int sleeping = 0;
        var bothSleep = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions
        {
            CancellationGrace = TimeSpan.FromMilliseconds(200),
            WorkerOutput = line =>
            {
                if (line.Text.StartsWith("sleeping", StringComparison.Ordinal) && Interlocked.Increment(ref sleeping) == 2)
                {
                    bothSleep.TrySetResult();
                }
            },
        });
        Call<int>[] calls = [.. Enumerable.Range(0, 3).SelectMany(_ => new[] { Call.Of(Functions.AnnounceAndSleep, 120_000), Call.Of(AnnounceAndSleepToo, 120_000, 0) })];
        using var cancel = new CancellationTokenSource();
        Func<Task> enumerate = async () =>
        {
            await foreach (Outcome<int> outcome in pool.RunAsCompletedAsync(calls, chunkSize: 1, cancellationToken: cancel.Token))
            {
                throw new InvalidOperationException($"no call should end, yet {outcome.Index} did");
            }
        };
        Task running = enumerate();
        await bothSleep.Task.Within();
        await cancel.CancelAsync();

        await running.Invoking(r => r.Within()).Should().ThrowAsync<OperationCanceledException>();
        // Had the sleeping calls gone on, both workers would be busy for minutes.
        (await pool.RunAsync([Call.Of(Functions.Square, 5)]).Within()).Should().Equal(25);
    }

    public static int AnnounceAndSleepToo(int milliseconds, int _) => Functions.AnnounceAndSleep(milliseconds);

    [Fact(Timeout = 60_000)]
    public async Task Run_reports_the_progress_of_all_its_calls_as_one_call()
    {
        var final = new TaskCompletionSource<PoolProgress>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reports = new List<PoolProgress>();
        var progress = new SynchronousProgress(p =>
        {
            lock (reports)
            {
                reports.Add(p);
            }

            if (p.IsFinal)
            {
                final.TrySetResult(p);
            }
        });

        long[] results = await Pool.WithProgress(progress).RunAsync(Mixed(30)).Within();
        final.Task.IsCompleted.Should().BeTrue("the final report comes before the call completes");
        PoolProgress last = await final.Task.Within();

        results.Should().HaveCount(30);
        last.Should().Match<PoolProgress>(p => p.Operation == "Run" && p.Completed == 30 && p.Total == 30);
        lock (reports)
        {
            reports.Count(p => p.IsFinal).Should().Be(1);
            reports.Select(p => p.CallId).Distinct().Should().HaveCount(1);
        }
    }

    [Fact]
    public void Call_Of_refuses_an_argument_that_cannot_reach_a_worker_where_the_call_is_built()
    {
        using var stream = new MemoryStream();
        Action buildStream = () => Call.Of(StreamLength, (Stream)stream);

        buildStream.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("args");
    }

    [Fact]
    public void Call_Of_refuses_a_closure_over_something_that_cannot_be_shipped()
    {
        using var stream = new MemoryStream();
        Action build = () => Call.Of(x => x + stream.Length, 1L);
        build.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("fn");
    }

    [Fact]
    public void A_call_reads_as_its_function_and_arguments()
    {
        Call.Of(AddLong, 2, 3L).ToString().Should().Be("AddLong(2, 3)");
        Call.Of(Widen, 4).ToString().Should().Be("Widen(4)");
    }

    [Fact]
    public async Task Run_refuses_a_null_call_naming_its_position()
    {
        Func<Task> run = () => Pool.RunAsync([Call.Of(Functions.Square, 1), null!]);
        (await run.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("Call 1 is null");
    }

    public static long StreamLength(Stream stream) => stream.Length;

    private sealed class SynchronousProgress(Action<PoolProgress> report) : IProgress<PoolProgress>
    {
        public void Report(PoolProgress value) => report(value);
    }
}
