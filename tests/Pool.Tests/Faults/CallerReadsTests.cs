using System.Diagnostics;

namespace Pool.Tests.Faults;

/// <summary>
/// A synchronous <c>Apply</c> whose task goes to an idle local worker reads the result itself (ReadTurns): the link's
/// reader thread sleeps while no task is in flight. Every way a call or a link can end must still reach the caller,
/// whichever thread is reading; and the worker's idle thread must still take the reading while a long task runs.
/// </summary>
public class CallerReadsTests
{
    [Fact(Timeout = 120_000)]
    public async Task Applies_between_maps_and_imaps_on_one_worker_get_every_result()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        for (int round = 0; round < 100; round++)
        {
            pool.Apply(Functions.Increment, round).Should().Be(round + 1);
            if (round % 10 == 0)
            {
                pool.Map(Functions.Square, Enumerable.Range(0, 50), chunkSize: 1).Should().Equal(Enumerable.Range(0, 50).Select(i => i * i));
                var unordered = new List<int>();
                await foreach ((long _, int value) in pool.ImapUnorderedAsync(Functions.Increment, Enumerable.Range(0, 20).ToAsyncEnumerable()))
                {
                    unordered.Add(value);
                }

                unordered.Should().BeEquivalentTo(Enumerable.Range(1, 20));
                (await pool.ApplyAsync(Functions.Square, round)).Should().Be(round * round);
            }
        }

        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 120_000)]
    public async Task Applies_from_many_threads_each_get_their_own_result()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2);
        Task[] callers = [.. Enumerable.Range(0, 6).Select(thread => Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < 200; i++)
                {
                    int x = (thread * 1000) + i;
                    pool.Apply(Functions.Square, x).Should().Be(x * x);
                }
            },
            TaskCreationOptions.LongRunning))];
        await Task.WhenAll(callers).Within();
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_worker_killed_while_its_caller_reads_fails_that_apply_and_the_pool_goes_on()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await StartAsync(started);
        int pid = pool.Apply(Functions.ProcessIdOfCaller);
        Task<int> waiting = Task.Factory.StartNew(() => pool.Apply(Functions.SayStartedThenSleep, 60_000), TaskCreationOptions.LongRunning);
        await WaitUntilStartedAsync(started);
        Process.GetProcessById(pid).Kill();

        await waiting.Awaiting(t => t.Within()).Should().ThrowAsync<WorkerCrashedException>();
        pool.Apply(Functions.ProcessIdOfCaller).Should().NotBe(pid);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 120_000)]
    public async Task Terminate_while_a_caller_reads_ends_its_apply()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ProcessPool pool = await StartAsync(started);
        Task<int> waiting = Task.Factory.StartNew(() => pool.Apply(Functions.SayStartedThenSleep, 60_000), TaskCreationOptions.LongRunning);
        await WaitUntilStartedAsync(started);
        var stopwatch = Stopwatch.StartNew();
        pool.Terminate();

        await waiting.Awaiting(t => t.Within()).Should().ThrowAsync<PoolTerminatedException>();
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_cancelled_apply_reaches_its_running_task_and_keeps_the_worker()
    {
        // The worker's idle thread takes the reading once the task has run a millisecond, so the cancel frame is read
        // while the task runs: the task ends through its token, and its worker is not killed.
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, new ProcessPoolOptions { CancellationGrace = TimeSpan.FromSeconds(30) });
        int pid = pool.Apply(Functions.ProcessIdOfCaller);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var stopwatch = Stopwatch.StartNew();

        Action apply = () => pool.Apply(Functions.SleepCooperatively, 60_000, cancellationToken: cancel.Token);

        apply.Should().Throw<OperationCanceledException>();
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
        pool.Apply(Functions.ProcessIdOfCaller).Should().Be(pid, "a task that ended through its token leaves its worker running");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_worker_that_dies_with_nothing_to_do_is_replaced()
    {
        // Its link's reader thread sleeps (no task in flight): the worker's exit must wake it to read the end, with no
        // call to set it reading. The pool says so (a warning) before anything is asked of it.
        var log = new LossLog();
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, log.Attach(new ProcessPoolOptions()));
        int pid = pool.Apply(Functions.ProcessIdOfCaller);
        Process.GetProcessById(pid).Kill();

        (await log.First.Within()).Should().Contain(pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        pool.Apply(Functions.ProcessIdOfCaller).Should().NotBe(pid);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    private static Task<ProcessPool> StartAsync(TaskCompletionSource started) =>
        TestPools.StartAsync(workers: 1, new ProcessPoolOptions { WorkerOutput = line => { if (line.Text == "started") started.TrySetResult(); } });

    private static Task WaitUntilStartedAsync(TaskCompletionSource started) => started.Task.Within();
}
