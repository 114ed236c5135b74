using System.Collections.Concurrent;

namespace Pool.Tests.Faults;

/// <summary>What workers write to stdout and stderr reaches the host, tagged, and never touches the protocol.</summary>
public class WorkerOutputTests
{
    [Fact(Timeout = 60_000)]
    public async Task Each_line_arrives_tagged_with_the_worker_id_and_pid_and_results_are_intact()
    {
        var lines = new ConcurrentQueue<WorkerOutputLine>();
        var last = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                lines.Enqueue(line);
                // stdout and stderr are read separately: wait for the last line of both, not of one.
                if (lines.Count(l => l.IsError) == 20 && lines.Count(l => !l.IsError && l.Text.StartsWith("out ", StringComparison.Ordinal)) == 20)
                {
                    last.TrySetResult();
                }
            },
        });

        int[] results = await pool.MapAsync(Functions.Chatty, Enumerable.Range(0, 20), chunkSize: 3).Within();
        await last.Task.Within();

        results.Should().Equal(Enumerable.Range(0, 20));
        lines.Where(l => !l.IsError && l.Text.StartsWith("out ", StringComparison.Ordinal)).Should().HaveCount(20);
        lines.Where(l => l.IsError).Select(l => l.Text).Should().BeEquivalentTo(Enumerable.Range(0, 20).Select(i => $"err {i}"));
        lines.Should().OnlyContain(l => pool.ProcessIds.Contains(l.ProcessId) && l.WorkerId > 0);
        lines.First().ToString().Should().StartWith($"[worker {lines.First().WorkerId}#{lines.First().ProcessId}] ");
    }
}
