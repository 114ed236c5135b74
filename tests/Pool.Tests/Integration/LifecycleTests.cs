using System.Diagnostics;

namespace Pool.Tests.Integration;

public class LifecycleTests
{
    /// <summary>
    /// concurrent.futures and pebble stop promptly when asked. A start cancelled at any moment, just after a worker said
    /// Ready included (whose reader thread then sleeps, having no task), ends soon after the cancel: it waited out a
    /// 15 s bound before.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task A_start_cancelled_at_any_moment_ends_promptly()
    {
        for (int ms = 40; ms <= 250; ms += 15)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(ms));
            var watch = Stopwatch.StartNew();
            try
            {
                await (await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 2, WorkerOutput = _ => { } }, cancel.Token)).DisposeAsync();
            }
            catch (OperationCanceledException)
            {
                watch.Elapsed.Should().BeLessThan(TimeSpan.FromMilliseconds(ms) + TimeSpan.FromSeconds(5), $"a start cancelled at {ms} ms ends soon after");
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Close_lets_queued_work_finish_then_join_returns_and_the_workers_are_gone()
    {
        ProcessPool pool = await TestPools.StartAsync();
        Task<int[]> map = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(20, 20), chunkSize: 1);
        AsyncResult<int> apply = pool.ApplyAsync(Functions.Square, 6);
        pool.Close();

        await pool.JoinAsync().Within();

        map.IsCompletedSuccessfully.Should().BeTrue();
        (await map).Should().HaveCount(20);
        apply.Get().Should().Be(36);
        TestPools.AssertGone(pool.StartedProcessIds);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_submit_method_refuses_work_after_close_naming_the_state()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        pool.Close();
        pool.Close();

        var refusals = new Action[]
        {
            () => pool.Map(Functions.Square, new[] { 1 }),
            () => pool.Map(Functions.Square, Array.Empty<int>()),
            () => pool.Imap(Functions.Square, new[] { 1 }),
            () => pool.ImapUnordered(Functions.Square, new[] { 1 }),
            () => pool.StarMap(Functions.Concat, new[] { ("a", 1) }),
            () => pool.Apply(Functions.Square, 1),
            () => pool.ApplyAsync(Functions.Square, 1),
        };
        foreach (Action refusal in refusals)
        {
            refusal.Should().Throw<InvalidOperationException>().WithMessage("Cannot call * the pool is closed*");
        }

        await pool.JoinAsync().Within();
        pool.Terminate();
        pool.Invoking(p => p.Apply(Functions.Square, 1)).Should().Throw<InvalidOperationException>().WithMessage("*terminated*");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>
    /// CPython's test_worker_finalization_via_atexit_handler_of_multiprocessing: a worker that ends because the pool was
    /// closed, or because it served MaxTasksPerWorker tasks, exits normally, so what a task registered for the process's
    /// exit runs (a log flushed, a native handle closed). Terminate and Dispose kill the workers: nothing of theirs runs.
    /// </summary>
    [Theory(Timeout = 60_000)]
    [InlineData("close", true)]
    [InlineData("retire", true)]
    [InlineData("terminate", false)]
    [InlineData("dispose", false)]
    public async Task A_worker_ended_by_close_or_retirement_runs_its_exit_handlers_and_a_killed_one_does_not(string how, bool run)
    {
        string folder = Directory.CreateTempSubdirectory("pool-exit-").FullName;
        try
        {
            ProcessPool pool = await TestPools.StartAsync(options: how == "retire" ? new ProcessPoolOptions { MaxTasksPerWorker = 1 } : null);
            int[] workers = await pool.MapAsync(Functions.WriteFileAtExit, new[] { folder, folder }, chunkSize: 1);
            workers.Distinct().Should().HaveCount(2, "each task ran in a worker of its own");
            switch (how)
            {
                case "close":
                    pool.Close();
                    await pool.JoinAsync().Within();
                    break;
                case "retire":
                    // Runs on the replacements, which start once the retired workers have exited (the pool waits for a
                    // lost worker's exit before it replaces it).
                    (await pool.MapAsync(Functions.Square, [1, 2], chunkSize: 1).Within()).Should().Equal(1, 4);
                    TestPools.AssertGone(workers);
                    break;
                case "terminate":
                    pool.Terminate();
                    await pool.JoinAsync().Within();
                    break;
            }

            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
            string[] expected = run ? [.. workers.Select(id => $"{id}.exit")] : [];
            Directory.GetFiles(folder).Select(Path.GetFileName).Should().BeEquivalentTo(expected, $"after {how}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Join_on_a_running_pool_is_a_state_error()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        pool.Invoking(p => p.Join()).Should().Throw<InvalidOperationException>().WithMessage("*Close() or Terminate()*");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>pebble's join(timeout), in the shape of Thread.Join(TimeSpan): whether the workers exited in time.</summary>
    [Fact(Timeout = 60_000)]
    public async Task Join_with_a_timeout_says_whether_the_workers_exited_in_time()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        pool.Invoking(p => p.Join(TimeSpan.FromSeconds(1))).Should().Throw<InvalidOperationException>().WithMessage("*Close() or Terminate()*");
        Task<int> slow = pool.ApplyAsync(Functions.Sleep, 1_500).Task;
        pool.Close();

        pool.Join(TimeSpan.FromMilliseconds(100)).Should().BeFalse("its task still runs");
        pool.Invoking(p => p.Join(TimeSpan.FromMilliseconds(-2))).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("timeout");
        pool.Join(TestPools.Bound).Should().BeTrue();
        (await slow).Should().Be(1_500);
        pool.Join(TimeSpan.Zero).Should().BeTrue();
        TestPools.AssertGone(pool.StartedProcessIds);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task Terminate_fails_every_unfinished_task_at_once_and_kills_the_workers()
    {
        ProcessPool pool = await TestPools.StartAsync();
        Task<int[]> map = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(30_000, 6), chunkSize: 1);
        AsyncResult<int> apply = pool.ApplyAsync(Functions.Sleep, 30_000);
        IAsyncEnumerator<int> imap = pool.ImapAsync(Functions.Sleep, Enumerable.Repeat(30_000, 3)).GetAsyncEnumerator();
        ValueTask<bool> next = imap.MoveNextAsync();
        IReadOnlyList<int> workers = pool.StartedProcessIds;

        var clock = Stopwatch.StartNew();
        pool.Terminate();
        pool.Terminate();

        await map.Invoking(async m => await m).Should().ThrowAsync<PoolTerminatedException>();
        await apply.Invoking(async a => await a).Should().ThrowAsync<PoolTerminatedException>();
        await next.AsTask().Invoking(async n => await n).Should().ThrowAsync<PoolTerminatedException>();
        await pool.JoinAsync().Within();
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        TestPools.AssertGone(workers);
        pool.Invoking(p => p.Map(Functions.Square, new[] { 1 })).Should().Throw<InvalidOperationException>().WithMessage("*terminated*");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task Dispose_terminates_and_is_idempotent()
    {
        ProcessPool pool = await TestPools.StartAsync();
        AsyncResult<int> apply = pool.ApplyAsync(Functions.Sleep, 30_000);
        IReadOnlyList<int> workers = pool.StartedProcessIds;
        pool.Dispose();
        pool.Dispose();
        await pool.DisposeAsync();

        apply.Invoking(a => a.Get(TestPools.Bound)).Should().Throw<PoolTerminatedException>();
        TestPools.AssertGone(workers);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_pool_runs_the_number_of_worker_processes_asked_for()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 3);
        pool.WorkerCount.Should().Be(3);
        pool.ProcessIds.Should().HaveCount(3).And.OnlyHaveUniqueItems().And.NotContain(Environment.ProcessId);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>A collection read at the call; and 3,000 lazy items, more than the window (256 for one worker), read on the Imap's own thread.</summary>
    [Theory(Timeout = 60_000)]
    [InlineData(100, false)]
    [InlineData(3_000, true)]
    public async Task Close_and_join_do_not_wait_for_an_Imap_nobody_reads(int count, bool lazy)
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        IEnumerable<int> items = lazy ? Enumerable.Range(0, count).Where(_ => true) : Enumerable.Range(0, count).ToArray();
        IEnumerable<int> results = pool.Imap(Functions.Increment, items, chunkSize: lazy ? 1 : null);
        pool.Close();
        await pool.JoinAsync().Within();
        results.Should().Equal(Enumerable.Range(1, count));
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>
    /// After Close an Imap's input was read without bound, so that Join would not wait for a consumer: an endless input
    /// (a live consumer, an application closing its pool to shut down) grew the host by gigabytes in seconds, read far
    /// faster than the workers ran it. Now the window counts from the tasks completed. Found by a sixth audit.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task After_close_an_endless_Imap_reads_no_faster_than_the_workers_run_it()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        long pulled = 0;
        IEnumerable<int> Endless()
        {
            while (true)
            {
                Interlocked.Increment(ref pulled);
                yield return 1;
            }
        }

        await Task.Run(() =>
        {
            int taken = 0;
            foreach (int _ in pool.Imap(Functions.Sleep, Endless(), chunkSize: 1))
            {
                if (++taken == 10)
                {
                    pool.Close();
                }

                if (taken == 200)
                {
                    break;
                }
            }
        }).Within();

        // About 200 tasks of 1 ms ran; the window is 256 tasks ahead of those completed.
        Interlocked.Read(ref pulled).Should().BeLessThan(2_000, "input is read at the workers' pace after Close");
        await pool.JoinAsync().Within();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_that_cannot_start_fails_construction_within_bounds_saying_what_was_tried()
    {
        var options = new ProcessPoolOptions
        {
            Workers = 1,
            WorkerEnvironment = new Dictionary<string, string?> { ["DOTNET_STARTUP_HOOKS"] = "/nonexistent/hook.dll" },
            WorkerOutput = _ => { },
        };

        Func<Task> start = () => ProcessPool.StartAsync(options);
        var error = (await start.Should().ThrowAsync<WorkerStartException>()).Which;
        error.Message.Should().Contain("exited with exit code").And.Contain("Pool.Worker.dll");
    }
}
