namespace Pool.Tests.Shipping;

/// <summary>
/// <see cref="ProcessPoolOptions.MaxConcurrencyPerWorker"/>: one worker runs several async tasks at once, and
/// still reports them in input order. No assertion here depends on timing: tasks meet at a rendezvous that
/// only opens when enough of them run at once in the same process.
/// </summary>
public class ConcurrencyTests
{
    [Theory(Timeout = 60_000)]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Async_tasks_of_one_worker_run_at_once_across_and_within_chunks(int chunkSize)
    {
        await using ProcessPool pool = await StartAsync(maxConcurrency: 4);
        string meeting = Guid.NewGuid().ToString("N");

        bool[] met = await pool.MapAsync(_ => Rendezvous.MeetAsync(meeting, 4), Enumerable.Range(0, 4), chunkSize).Within();

        met.Should().Equal(true, true, true, true);
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_with_chunks_of_one_also_runs_them_at_once()
    {
        await using ProcessPool pool = await StartAsync(maxConcurrency: 3);
        string meeting = Guid.NewGuid().ToString("N");

        bool[] met = await Task.Run(() => pool.Imap(_ => Rendezvous.MeetAsync(meeting, 3), Enumerable.Range(0, 3)).ToArray()).Within();

        met.Should().Equal(true, true, true);
    }

    [Fact(Timeout = 60_000)]
    public async Task Outcomes_come_back_in_input_order_when_tasks_finish_out_of_order()
    {
        await using ProcessPool pool = await StartAsync(maxConcurrency: 8);

        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(
            async x =>
            {
                await Task.Delay((40 - x) % 7);
                return x % 9 == 4 ? throw new InvalidOperationException($"task {x}") : x * 2;
            },
            Enumerable.Range(0, 40),
            chunkSize: 10).Within();

        outcomes.Select(o => o.Index).Should().Equal(Enumerable.Range(0, 40).Select(i => (long)i));
        outcomes.Where(o => o.Succeeded).Select(o => o.Value).Should().Equal(Enumerable.Range(0, 40).Where(x => x % 9 != 4).Select(x => x * 2));
        outcomes.Where(o => !o.Succeeded).Select(o => o.Exception.Should().BeOfType<InvalidOperationException>().Which.Message).Should().Equal("task 4", "task 13", "task 22", "task 31");
        (await Task.Run(() => pool.Imap(async x => { await Task.Delay(x % 3); return x; }, Enumerable.Range(0, 30), chunkSize: 5).ToArray()).Within())
            .Should().Equal(Enumerable.Range(0, 30));
    }

    [Fact(Timeout = 60_000)]
    public async Task Synchronous_functions_still_run_one_at_a_time()
    {
        await using ProcessPool pool = await StartAsync(maxConcurrency: 4);

        (await pool.MapAsync(Overlap.Track, Enumerable.Range(0, 200), chunkSize: 1).Within()).Should().HaveCount(200);

        (await pool.ApplyAsync(() => Overlap.Most).Task.Within()).Should().Be(1);
    }

    [Fact(Timeout = 60_000)]
    public async Task Cancelling_a_call_cancels_every_running_task_through_its_own_token()
    {
        var log = new LossLog();
        ProcessPoolOptions options = log.Attach(Announce.Counting(new ProcessPoolOptions { CancellationGrace = TimeSpan.FromSeconds(30) }, 4, out Task allWaiting));
        await using ProcessPool pool = await StartAsync(maxConcurrency: 4, options);
        int worker = pool.ProcessIds.Single();
        using var cancellation = new CancellationTokenSource();

        Task<int[]> waiting = pool.MapAsync(CancelCounter.WaitAsync, Enumerable.Range(0, 4), chunkSize: 2, cancellationToken: cancellation.Token);
        await allWaiting.Within();
        await cancellation.CancelAsync();

        await waiting.Invoking(w => w).Should().ThrowAsync<OperationCanceledException>();
        (await pool.ApplyAsync(() => (CancelCounter.Count, Environment.ProcessId)).Task.Within())
            .Should().Be((4, worker), $"the same worker runs the next task once its cancelled tasks have ended; the pool logged:{Environment.NewLine}{log}");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_synchronous_task_queued_behind_async_ones_runs_on_the_same_worker()
    {
        // The synchronous task runs once the async ones are reported. It once started while the thread that had
        // reported the last async outcome was still flushing it: the two writes interleaved, and the worker was
        // killed for a corrupt stream (or crashed) and replaced. That happened in about one round in a few hundred
        // on a loaded machine; ConcurrentExecutorTests forces the same ordering deterministically.
        var log = new LossLog();
        await using ProcessPool pool = await StartAsync(maxConcurrency: 4, log.Attach(new ProcessPoolOptions()));
        int worker = pool.ProcessIds.Single();

        for (int round = 0; round < 300; round++)
        {
            Task<int[]> squares = pool.MapAsync(AsyncFunctions.SquareLaterAsync, Enumerable.Range(0, 4), chunkSize: 2);
            Task<int> processId = pool.ApplyAsync(Functions.ProcessId, round).Task;

            (await squares.Within()).Should().Equal(0, 1, 4, 9);
            (await processId.Within()).Should().Be(worker, $"round {round} runs on the pool's only worker; the pool logged:{Environment.NewLine}{log}");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_timeout_stops_the_oldest_running_task_through_its_token_and_the_others_finish()
    {
        await using ProcessPool pool = await StartAsync(maxConcurrency: 2, new ProcessPoolOptions { CancellationGrace = TimeSpan.FromSeconds(30) });

        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(
            async (x, ct) =>
            {
                await Task.Delay(x == 0 ? Timeout.Infinite : 1, ct);
                return x;
            },
            Enumerable.Range(0, 4),
            chunkSize: 4,
            taskTimeout: TimeSpan.FromMilliseconds(300)).Within();

        outcomes[0].Exception.Should().BeOfType<TaskTimeoutException>().Which.Message.Should().Contain("cancelled through its token");
        outcomes.Skip(1).Select(o => o.Value).Should().Equal(1, 2, 3);
    }

    [Fact]
    public async Task MaxConcurrencyPerWorker_below_one_is_refused()
    {
        Func<Task> start = () => ProcessPool.StartAsync(new ProcessPoolOptions { MaxConcurrencyPerWorker = 0 });

        (await start.Should().ThrowAsync<ArgumentOutOfRangeException>()).WithParameterName(nameof(ProcessPoolOptions.MaxConcurrencyPerWorker));
    }

    private static Task<ProcessPool> StartAsync(int maxConcurrency, ProcessPoolOptions? options = null) =>
        TestPools.StartAsync(workers: 1, options: (options ?? new ProcessPoolOptions()) with { MaxConcurrencyPerWorker = maxConcurrency });
}
