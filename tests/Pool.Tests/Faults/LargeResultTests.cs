namespace Pool.Tests.Faults;

/// <summary>A result too large for the protocol fails its task, in the worker that made it; the worker carries on.</summary>
public class LargeResultTests
{
    [Fact(Timeout = 180_000)]
    public async Task A_result_over_the_frame_limit_fails_its_task_once_and_the_worker_survives()
    {
        // A byte array over 1 GiB is not sent as a block; written into the results frame, the limit was found only when
        // the frame was ended at the flush: the worker's executor failed and the worker exited (code 6), and the task,
        // blamed on none, ran on two more workers before it failed as a WorkerCrashedException "queued" on the third.
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions { WorkerOutput = _ => { } });
        int before = await pool.ApplyAsync(Functions.ProcessId, 0).Task.Within();

        Func<Task> tooLarge = () => pool.ApplyAsync(Functions.Bytes, 1025).Task.WaitAsync(TimeSpan.FromSeconds(150));

        (await tooLarge.Should().ThrowAsync<InvalidOperationException>()).WithMessage("*at most 1073741824 bytes*");
        (await pool.ApplyAsync(Functions.ProcessId, 0).Task.Within()).Should().Be(before, "the worker did not die of it");
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10)).Within()).Should().Equal(Enumerable.Range(0, 10).Select(x => x * x));
    }
}
