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

    [Fact(Timeout = 120_000)]
    public async Task A_line_without_end_reaches_the_host_in_bounded_pieces_and_all_of_it_arrives()
    {
        // ReadLineAsync held a line until its newline: 300 MB written without one cost the host 1.6 GB.
        long chars = 0;
        int longest = 0;
        var end = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                if (line.Text == "end")
                {
                    end.TrySetResult();
                    return;
                }

                Interlocked.Add(ref chars, line.Text.Length);
                int length = line.Text.Length;
                int seen;
                while ((seen = Volatile.Read(ref longest)) < length && Interlocked.CompareExchange(ref longest, length, seen) != seen)
                {
                }
            },
        });

        (await pool.ApplyAsync(Functions.WriteWithoutNewline, 64, false).Task.Within()).Should().Be(64);
        await end.Task.Within();

        Interlocked.Read(ref chars).Should().Be(64L << 20, "every character written arrives");
        longest.Should().Be(16 * 1024, "a line longer than 16 K characters arrives in pieces");
    }

    [Fact(Timeout = 120_000)]
    public async Task A_crash_after_a_long_stderr_line_quotes_a_bounded_tail()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions { WorkerOutput = _ => { } });

        Func<Task> crash = () => pool.ApplyAsync(Functions.LongErrorLineThenFailFast, 16).Task.Within();

        WorkerCrashedException e = (await crash.Should().ThrowAsync<WorkerCrashedException>()).Which;
        e.Message.Length.Should().BeLessThan(64 * 1024, "the message used to quote the whole 16 MB line");
        e.StandardError.Should().OnlyContain(line => line.Length <= 1024 + 4);
        e.StandardError.Should().Contain(line => line.Contains("after a long line", StringComparison.Ordinal));
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10)).Within()).Should().Equal(Enumerable.Range(0, 10).Select(x => x * x));
    }
}
