namespace Pool.Tests.Faults;

/// <summary>A worker that dies costs the task it was running, never the pool and never a hang.</summary>
public class CrashTests
{
    public static TheoryData<CrashKind> Kinds => [.. Enum.GetValues<CrashKind>()];

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(Kinds))]
    public async Task In_a_map_only_the_crashed_task_fails_and_its_chunk_mates_run_elsewhere(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        IReadOnlyList<int> before = pool.ProcessIds;
        int[] inputs = [.. Enumerable.Range(0, 12)];
        inputs[5] = (int)kind;

        // Chunks of 4: task 5 is the second of its chunk, so tasks 4, 6 and 7 share its fate unless resent.
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, inputs, chunkSize: 4).Within();

        for (int i = 0; i < inputs.Length; i++)
        {
            if (i != 5)
            {
                outcomes[i].Value.Should().Be(2 * i, $"task {i} did not crash");
            }
        }

        AssertCrashed(outcomes[5].Exception, kind, 5, before);
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(Kinds))]
    public async Task In_an_imap_the_crash_throws_at_its_position_and_the_rest_follow(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        IReadOnlyList<int> before = pool.ProcessIds;
        int[] inputs = [.. Enumerable.Range(0, 10)];
        inputs[3] = (int)kind;

        var values = new List<int>();
        Exception? failure = null;
        await using (IAsyncEnumerator<int> results = pool.ImapAsync(Crashes.DoubleOrCrash, inputs).GetAsyncEnumerator())
        {
            while (true)
            {
                try
                {
                    if (!await results.MoveNextAsync().AsTask().Within())
                    {
                        break;
                    }

                    values.Add(results.Current);
                }
                catch (WorkerCrashedException e)
                {
                    values.Should().HaveCount(3, "the failure is raised at its position");
                    failure = e;
                }
            }
        }

        values.Should().Equal(0, 2, 4, 8, 10, 12, 14, 16, 18);
        AssertCrashed(failure, kind, 3, before);
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(Kinds))]
    public async Task In_an_unordered_imap_every_other_result_arrives(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        IReadOnlyList<int> before = pool.ProcessIds;
        int[] inputs = [.. Enumerable.Range(0, 10)];
        inputs[6] = (int)kind;

        var indices = new List<long>();
        Exception? failure = null;
        await using (IAsyncEnumerator<(long Index, int Result)> results = pool.ImapUnorderedAsync(Crashes.DoubleOrCrash, inputs, chunkSize: 3).GetAsyncEnumerator())
        {
            while (true)
            {
                try
                {
                    if (!await results.MoveNextAsync().AsTask().Within())
                    {
                        break;
                    }

                    results.Current.Result.Should().Be(2 * (int)results.Current.Index);
                    indices.Add(results.Current.Index);
                }
                catch (WorkerCrashedException e)
                {
                    failure = e;
                }
            }
        }

        indices.Should().BeEquivalentTo(new long[] { 0, 1, 2, 3, 4, 5, 7, 8, 9 });
        AssertCrashed(failure, kind, 6, before);
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(Kinds))]
    public async Task ApplyAsync_fails_with_the_crash_and_runs_the_error_callback(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        IReadOnlyList<int> before = pool.ProcessIds;
        var callback = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);

        AsyncResult<int> result = pool.ApplyAsync(Crashes.DoubleOrCrash, (int)kind, errorCallback: e => callback.TrySetResult(e));

        Exception error = (await result.Invoking(async r => await r).Should().ThrowAsync<WorkerCrashedException>()).Which;
        (await callback.Task.Within()).Should().BeSameAs(error);
        AssertCrashed(error, kind, 0, before);
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_result_delivered_before_the_worker_died_is_kept()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);

        // One chunk: the first three tasks report before the fourth kills the worker.
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [1, 2, 3, (int)CrashKind.Exit1, 5, 6], chunkSize: 6).Within();

        outcomes.Select(o => o.Succeeded).Should().Equal(true, true, true, false, true, true);
        outcomes.Where(o => o.Succeeded).Select(o => o.Value).Should().Equal(2, 4, 6, 10, 12);
    }

    [Fact(Timeout = 60_000)]
    public async Task Several_workers_dying_at_once_fail_only_their_tasks()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 3);
        int[] inputs = [.. Enumerable.Range(0, 30)];
        inputs[4] = (int)CrashKind.Segfault;
        inputs[5] = (int)CrashKind.SigKill;
        inputs[6] = (int)CrashKind.Exit1;

        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, inputs, chunkSize: 1).Within();

        outcomes.Where(o => !o.Succeeded).Select(o => o.Index).Should().Equal(4, 5, 6);
        outcomes.Where(o => !o.Succeeded).Select(o => o.Exception).Should().AllBeOfType<WorkerCrashedException>();
        outcomes.Where(o => o.Succeeded).Should().OnlyContain(o => o.Value == 2 * o.Index);
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_crash_while_large_arguments_are_in_transfer_ends_without_deadlock()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        byte[][] inputs = [[1], .. Enumerable.Range(0, 12).Select(_ => new byte[8 << 20])];

        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.LengthOrExit, inputs, chunkSize: 1).Within();

        outcomes[0].Exception.Should().BeOfType<WorkerCrashedException>().Which.ExitCode.Should().Be(3);
        outcomes.Skip(1).Should().OnlyContain(o => o.Succeeded && o.Value == 8 << 20);
    }

    public static int ReportAtLengthAndExit(int frames)
    {
        Console.Error.WriteLine("Unhandled exception. System.InvalidOperationException: a report longer than the tail");
        for (int i = 0; i < frames; i++)
        {
            Console.Error.WriteLine($"   at Frame{i}()");
        }

        Console.Error.Flush();
        Environment.Exit(1);
        return 0;
    }

    [Fact(Timeout = 60_000)]
    public async Task A_crash_report_longer_than_the_stderr_tail_keeps_its_first_line()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);

        Func<Task> crash = () => pool.ApplyAsync(ReportAtLengthAndExit, 100).Task.Within();

        WorkerCrashedException e = (await crash.Should().ThrowAsync<WorkerCrashedException>()).Which;
        e.StandardError[0].Should().StartWith("Unhandled exception. System.InvalidOperationException");
        e.StandardError[^1].Should().Be("   at Frame99()");
        e.Message.Should().Contain("Unhandled exception.");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_killed_from_outside_fails_its_task_with_SIGKILL()
    {
        var started = new TaskCompletionSource<WorkerOutputLine>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                if (line.Text.StartsWith("sleeping", StringComparison.Ordinal))
                {
                    started.TrySetResult(line);
                }
            },
        });

        AsyncResult<int> result = pool.ApplyAsync(Functions.AnnounceAndSleep, 60_000);
        WorkerOutputLine line = await started.Task.Within();
        ProcessTreeKill(line.ProcessId);

        WorkerCrashedException error = (await result.Invoking(async r => await r).Should().ThrowAsync<WorkerCrashedException>()).Which;
        error.ProcessId.Should().Be(line.ProcessId);
        error.Signal.Should().Be("SIGKILL");
        error.Message.Should().Contain("The pool did not send it").And.Contain("out-of-memory killer");
        await AssertWholeAndAnsweringAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task After_an_ordinary_exception_the_same_worker_takes_the_next_task()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        int pid = pool.ProcessIds.Single();

        await pool.Invoking(p => p.MapAsync(Functions.FailOnSeven, [7])).Should().ThrowAsync<ArgumentException>();

        (await pool.MapAsync(Functions.ProcessId, [1, 2, 3]).Within()).Should().OnlyContain(p => p == pid);
        pool.StartedProcessIds.Should().Equal(pid);
    }

    private static void ProcessTreeKill(int processId) => System.Diagnostics.Process.GetProcessById(processId).Kill();

    private static void AssertCrashed(Exception? error, CrashKind kind, long index, IReadOnlyList<int> workers)
    {
        WorkerCrashedException crash = error.Should().BeOfType<WorkerCrashedException>().Which;
        (int exitCode, string? signal) = Crashes.ExpectedExit(kind);
        crash.ExitCode.Should().Be(exitCode, crash.Message);
        crash.Signal.Should().Be(signal, crash.Message);
        crash.TaskIndex.Should().Be(index);
        workers.Should().Contain(crash.ProcessId);
        crash.Message.Should().Contain($"pid {crash.ProcessId}").And.Contain($"task {index}");
        if (kind == CrashKind.FailFast)
        {
            string.Join('\n', crash.StandardError).Should().Contain("ProcessPool test fail-fast");
        }

        if (kind == CrashKind.StackOverflow)
        {
            string.Join('\n', crash.StandardError).Should().Contain("Stack overflow");
        }
    }

    private static async Task AssertWholeAndAnsweringAsync(ProcessPool pool)
    {
        await pool.WhenAllWorkersAsync().Within();
        pool.ProcessIds.Should().HaveCount(pool.WorkerCount);
        (await pool.MapAsync(Functions.Increment, [1, 2, 3]).Within()).Should().Equal(2, 3, 4);
    }
}
