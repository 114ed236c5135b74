namespace Pool.Tests.Integration;

public class InProcessTests
{
    [Fact(Timeout = 60_000)]
    public async Task In_process_mode_runs_in_this_process_with_the_same_results_and_errors()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { InProcess = true });

        pool.WorkerCount.Should().Be(1);
        pool.Apply(Functions.ProcessIdOfCaller).Should().Be(Environment.ProcessId);
        (await pool.MapAsync(Functions.Move, new[] { new Point(1, 1) })).Should().Equal(new Point(2, 2));
        pool.Imap(Functions.Square, Enumerable.Range(0, 10)).Should().Equal(Enumerable.Range(0, 10).Select(x => x * x));
        pool.Invoking(p => p.Map(Functions.FailOnSeven, new[] { 7 })).Should().Throw<ArgumentException>();
        pool.Invoking(p => p.Map((Action a) => 1, new Action[] { () => { } })).Should().Throw<ArgumentException>();

        pool.Close();
        await pool.JoinAsync().Within();
    }

    /// <summary>
    /// In-process mode cannot kill a runaway task, but a task past its timeout must still fail with it, as with worker
    /// processes, rather than succeed late: it fails when it ends (it ran on to the end, silently successful, before).
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task In_process_mode_fails_a_task_past_its_timeout_when_it_ends()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { InProcess = true, TaskTimeout = TimeSpan.FromMilliseconds(200) });

        Func<Task> runaway = () => pool.ApplyAsync(Functions.Sleep, 1_000).Task;

        await runaway.Should().ThrowAsync<TaskTimeoutException>().WithMessage("*ran in this process (InProcess), where nothing can be stopped*");
        (await pool.ApplyAsync(Functions.Square, 3).Task.Within()).Should().Be(9);
    }
}
