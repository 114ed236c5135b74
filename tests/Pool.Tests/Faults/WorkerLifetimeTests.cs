namespace Pool.Tests.Faults;

/// <summary>MaxTasksPerWorker (maxtasksperchild) and the initializer (initializer/initargs).</summary>
public class WorkerLifetimeTests
{
    [Theory(Timeout = 60_000)]
    [InlineData(1, 3)]
    [InlineData(3, 1)]
    [InlineData(3, 5)]
    [InlineData(4, 2)]
    public async Task Each_worker_serves_exactly_MaxTasksPerWorker_tasks_then_is_replaced(int maxTasks, int chunkSize)
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { MaxTasksPerWorker = maxTasks });

        int[] pids = await pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, 20), chunkSize).Within();

        IGrouping<int, int>[] byWorker = [.. pids.GroupBy(p => p)];
        byWorker.Should().OnlyContain(g => g.Count() <= maxTasks, "no worker runs more than its quota");
        byWorker.Count(g => g.Count() < maxTasks).Should().BeLessThanOrEqualTo(pool.WorkerCount, "only the workers still alive at the end may have quota left");
        await pool.WhenAllWorkersAsync().Within();
        TestPools.AssertGone(byWorker.Where(g => g.Count() == maxTasks).Select(g => g.Key));
    }

    [Fact(Timeout = 60_000)]
    public async Task MaxTasksPerWorker_does_not_deadlock_with_a_backlog_and_close()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { MaxTasksPerWorker = 2 });

        Task<int[]> map = pool.MapAsync(Functions.Square, Enumerable.Range(0, 30), chunkSize: 7);
        AsyncResult<int> apply = pool.ApplyAsync(Functions.Square, 9);
        pool.Close();

        (await map.Within()).Should().Equal(Enumerable.Range(0, 30).Select(x => x * x));
        (await apply).Should().Be(81);
        await pool.JoinAsync().Within();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    [Fact(Timeout = 60_000)]
    public async Task With_an_initializer_every_task_runs_on_the_thread_that_ran_it()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions().WithInitializer(ThreadFunctions.RememberThread));

        bool[] mapped = await pool.MapAsync(ThreadFunctions.OnInitializerThread, Enumerable.Range(0, 2000), chunkSize: 1).Within();
        var applied = new List<bool>();
        for (int i = 0; i < 100; i++)
        {
            applied.Add(pool.Apply(ThreadFunctions.OnInitializerThread, i));
        }

        mapped.Should().OnlyContain(same => same, "a thread-affine native library set up by the initializer is called from its thread");
        applied.Should().OnlyContain(same => same);
    }

    [Fact]
    public void MaxTasksPerWorker_must_be_positive()
    {
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { MaxTasksPerWorker = 0 }))
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxTasksPerWorker");
    }

    [Fact(Timeout = 60_000)]
    public async Task The_initializer_runs_once_in_every_worker_replacements_included()
    {
        await using ProcessPool pool = await TestPools.StartAsync(
            options: new ProcessPoolOptions { MaxTasksPerWorker = 2 }.WithInitializer(Functions.Remember, "ready"));

        string?[] seen = await pool.MapAsync(Functions.Remembered, Enumerable.Range(0, 10), chunkSize: 1).Within();

        seen.Should().OnlyContain(s => s != null && s.StartsWith("ready in ", StringComparison.Ordinal));
        seen.Distinct().Should().HaveCountGreaterThanOrEqualTo(5, "each of the five or more workers ran the initializer itself");
    }

    [Fact(Timeout = 60_000)]
    public async Task An_initializer_receives_a_megabyte_array_argument_whole()
    {
        double[] table = [.. Enumerable.Repeat(0.5, 1 << 17)];
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions().WithInitializer(Functions.RememberSum, table));

        (await pool.ApplyAsync(Functions.Remembered, 0).Task.Within()).Should().Be($"sum {table.Sum()}");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_throwing_initializer_fails_the_tasks_and_stops_the_pool_after_a_few_attempts()
    {
        await using ProcessPool pool = await TestPools.StartAsync(
            options: new ProcessPoolOptions().WithInitializer(Functions.FailToInitialize, "no licence"));

        Func<Task> map = () => pool.MapAsync(Functions.Increment, [1, 2, 3]);

        InitializerException error = (await map.Should().ThrowAsync<InitializerException>()).Which;
        error.Message.Should().Contain("FailToInitialize").And.Contain("no licence");
        error.RemoteError.RemoteType.Should().Be("System.InvalidOperationException");
        error.InnerException.Should().BeSameAs(error.RemoteError);
        pool.Invoking(p => p.Map(Functions.Increment, [1])).Should().Throw<InitializerException>();
        pool.StartedProcessIds.Count.Should().BeLessThanOrEqualTo(pool.WorkerCount + ProcessPoolOptions.InitializerAttempts, "the pool stops respawning");
        await pool.DisposeAsync().AsTask().Within();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_initializer_that_never_finishes_fails_the_tasks_and_stops_the_pool_after_a_few_attempts()
    {
        await using ProcessPool pool = await TestPools.StartAsync(
            workers: 1, options: new ProcessPoolOptions { StartTimeout = TimeSpan.FromSeconds(1) }.WithInitializer(Functions.HangInInitializer));

        Func<Task> map = () => pool.MapAsync(Functions.Increment, [1, 2], taskTimeout: TimeSpan.FromSeconds(1)).Within();

        InitializerException error = (await map.Should().ThrowAsync<InitializerException>()).Which;
        error.Message.Should().Contain("HangInInitializer").And.Contain("did not finish within ProcessPoolOptions.StartTimeout (1 s)");
        error.RemoteError.RemoteType.Should().Be("System.TimeoutException");
        pool.Invoking(p => p.Map(Functions.Increment, [1])).Should().Throw<InitializerException>();
        pool.StartedProcessIds.Should().HaveCount(ProcessPoolOptions.InitializerAttempts, "each hang counts as a failed attempt");
        await pool.DisposeAsync().AsTask().Within();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_whose_initializer_hangs_is_replaced_and_its_tasks_run_on_the_replacement()
    {
        string marker = Path.Combine(Path.GetTempPath(), $"pool-tests-init-{Guid.NewGuid():N}");
        try
        {
            await using ProcessPool pool = await TestPools.StartAsync(
                workers: 1, options: new ProcessPoolOptions { StartTimeout = TimeSpan.FromSeconds(1) }.WithInitializer(Functions.HangInFirstWorker, marker));
            int first = pool.ProcessIds.Single();

            (await pool.MapAsync(Functions.Increment, [1, 2, 3]).Within()).Should().Equal(2, 3, 4);

            pool.ProcessIds.Should().NotContain(first);
            TestPools.AssertGone([first]);
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public void An_initializer_argument_that_cannot_be_serialized_is_refused_at_construction()
    {
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions().WithInitializer(Functions.RememberStream, (Stream)new MemoryStream())))
            .Should().Throw<ArgumentException>().WithMessage("*initializer*RememberStream*");
    }
}

/// <summary>A pool that is dropped without Dispose does not leak its workers.</summary>
public sealed class DroppedPoolTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_pool_dropped_without_dispose_has_its_workers_terminated_after_a_collection()
    {
        int[] workers = await Task.Run(StartUseAndDrop).Within();
        workers.Should().HaveCount(2);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // Each wait is on the worker's exit event (a pidfd), within 2 s of the collection in all.
        var left = System.Diagnostics.Stopwatch.StartNew();
        foreach (int worker in workers)
        {
            TimeSpan remaining = TimeSpan.FromSeconds(2) - left.Elapsed;
            OrphanTests.WaitForExit(worker, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero)
                .Should().BeTrue($"worker {worker} of a collected pool must exit within 2 s");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_pending_call_keeps_its_dropped_pool_alive_until_it_ends()
    {
        Task<int[]> pending = StartAndDropWithPendingMap();
        await Task.Yield();

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        (await pending.Within()).Should().Equal(300, 300);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int[] StartUseAndDrop()
    {
        var pool = new ProcessPool(new ProcessPoolOptions { Workers = 2, WorkerOutput = _ => { } });
        pool.Map(Functions.Square, [1, 2, 3]).Should().Equal(1, 4, 9);
        return [.. pool.ProcessIds];
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static Task<int[]> StartAndDropWithPendingMap()
    {
        var pool = new ProcessPool(new ProcessPoolOptions { Workers = 2, WorkerOutput = _ => { } });
        return pool.MapAsync(Functions.Sleep, [300, 300], chunkSize: 1);
    }
}

/// <summary>Shipped functions that tell which thread of its worker runs a task.</summary>
public static class ThreadFunctions
{
    [ThreadStatic]
    private static bool _initializedHere;

    public static void RememberThread() => _initializedHere = true;

    public static bool OnInitializerThread(int _) => _initializedHere;
}
