using System.Runtime.InteropServices;

namespace Pool.Tests.Faults;

/// <summary>A worker that stops reading (frozen, swapping, stopped in a debugger) holds up only the tasks sent to it.</summary>
public partial class FrozenWorkerTests
{
    private const int SigStop = 19;
    private const int SigCont = 18;
    private const int SigKill = 9;

    [Theory(Timeout = 120_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_frozen_worker_with_a_full_pipe_does_not_hold_up_the_other_worker(bool text)
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2);
        int frozen = pool.ProcessIds[0];
        int other = pool.ProcessIds[1];
        Kill(frozen, SigStop).Should().Be(0);
        var results = new List<AsyncResult<int>>();
        try
        {
            // 4 MiB arguments (arrays sent as they are, or text inside the task's frame): the two chunks the frozen
            // worker takes before its window is full are more than its pipe's buffer holds, so the write to it
            // blocks until it runs again.
            for (int i = 0; i < 12; i++)
            {
                results.Add(text
                    ? pool.ApplyAsync(Functions.ProcessIdOfText, new string('x', 4 << 20))
                    : pool.ApplyAsync(Functions.ProcessIdOf, new byte[4 << 20]));
            }

            // Everything the frozen worker did not take runs on the other one meanwhile.
            await AllButTwoReady(results);

            // One snapshot: the query is lazy, and a result that becomes ready between two of the assertion's
            // enumerations made it see 10 items and then 11 (the flaky failure of this test under load).
            int[] ready = [.. results.Where(r => r.Ready).Select(r => r.Task.Result)];
            ready.Should().AllBeEquivalentTo(other).And.HaveCountGreaterThanOrEqualTo(results.Count - 2);
        }
        finally
        {
            Kill(frozen, SigCont).Should().Be(0);
        }

        int[] all = await Task.WhenAll(results.Select(r => r.Task)).Within();
        all.Should().OnlyContain(pid => pid == frozen || pid == other).And.HaveCount(12);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_frozen_worker_killed_with_arguments_queued_for_it_loses_no_task()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2);
        int frozen = pool.ProcessIds[0];
        Kill(frozen, SigStop).Should().Be(0);
        var results = new List<AsyncResult<int>>();
        for (int i = 0; i < 12; i++)
        {
            results.Add(pool.ApplyAsync(Functions.ProcessIdOf, new byte[4 << 20]));
        }

        // The write of its second argument is waiting on its full pipe when it dies: the tasks it held had not
        // started, so they run on another worker.
        await AllButTwoReady(results);

        Kill(frozen, SigKill).Should().Be(0);
        int[] all = await Task.WhenAll(results.Select(r => r.Task)).Within();
        all.Should().HaveCount(12).And.NotContain(frozen);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_frozen_worker_running_a_task_past_its_timeout_is_killed_and_replaced()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(
            workers: 1, new ProcessPoolOptions { WorkerOutput = line => { if (line.Text == "started") started.TrySetResult(); } });
        int frozen = pool.ProcessIds[0];
        AsyncResult<int> running = pool.ApplyAsync(Functions.SayStartedThenSleep, 10_000, taskTimeout: TimeSpan.FromSeconds(1));
        AsyncResult<int> queued = pool.ApplyAsync(Functions.ProcessIdOf, new byte[1]);
        await started.Task.Within();

        Kill(frozen, SigStop).Should().Be(0);
        await running.Invoking(r => r.Task).Should().ThrowAsync<TaskTimeoutException>();
        (await queued.Task.Within()).Should().NotBe(frozen, "the task it had not started runs on its replacement");
        TestPools.AssertGone([frozen]);
    }

    /// <summary>Waits (at most 30 s) until all but two of the results are ready: those the frozen worker did not take.</summary>
    private static async Task AllButTwoReady(List<AsyncResult<int>> results)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int ready = 0;
        foreach (AsyncResult<int> result in results)
        {
            _ = result.Task.ContinueWith(
                _ =>
                {
                    if (Interlocked.Increment(ref ready) == results.Count - 2)
                    {
                        reached.TrySetResult();
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        await Task.WhenAny(reached.Task, Task.Delay(TimeSpan.FromSeconds(30)));
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
