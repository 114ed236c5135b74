using CliWrap.Buffered;
using Pool.Tests.Faults;

namespace Pool.Tests.Integration;

public class SharedPoolTests
{
    [Fact(Timeout = 120_000)]
    public async Task The_shared_pool_is_started_once_reused_and_started_again_after_it_is_terminated()
    {
        ProcessPool shared = ProcessPool.Shared;
        try
        {
            ProcessPool.Shared.Should().BeSameAs(shared);
            shared.WorkerCount.Should().Be(Environment.ProcessorCount);
            (await shared.MapAsync(Functions.Square, [1, 2, 3]).Within()).Should().Equal(1, 4, 9);
            (await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => ProcessPool.Shared))).Within()).Should().AllSatisfy(p => p.Should().BeSameAs(shared));

            shared.Terminate();
            ProcessPool next = ProcessPool.Shared;
            next.Should().NotBeSameAs(shared);
            (await next.RunAsync([Call.Of(Functions.Square, 4)]).Within()).Should().Equal(16);
        }
        finally
        {
            IReadOnlyList<int> started = [.. shared.StartedProcessIds, .. ProcessPool.Shared.StartedProcessIds];
            await shared.DisposeAsync();
            await ProcessPool.Shared.DisposeAsync();
            TestPools.AssertGone(started);
        }
    }

    /// <summary>Python's idiom, pool.close(); pool.join(), written on the shared pool: Join waits for the pool just closed
    /// (it got a new pool, started its workers, and refused to join it), and the next use after that gets a new one.</summary>
    [Fact(Timeout = 120_000)]
    public async Task Closing_then_joining_the_shared_pool_joins_that_pool_and_the_next_use_gets_a_new_one()
    {
        ProcessPool shared = ProcessPool.Shared;
        try
        {
            Task<int[]> queued = shared.MapAsync(Functions.Sleep, [50, 50, 50], chunkSize: 1);
            ProcessPool.Shared.Close();

            ProcessPool.Shared.Should().BeSameAs(shared);
            await Task.Run(() => ProcessPool.Shared.Join()).Within();

            (await queued).Should().HaveCount(3);
            TestPools.AssertGone(shared.StartedProcessIds);
            ProcessPool next = ProcessPool.Shared;
            next.Should().NotBeSameAs(shared);
            (await next.MapAsync(Functions.Square, [5]).Within()).Should().Equal(25);
        }
        finally
        {
            IReadOnlyList<int> started = [.. shared.StartedProcessIds, .. ProcessPool.Shared.StartedProcessIds];
            await shared.DisposeAsync();
            await ProcessPool.Shared.DisposeAsync();
            TestPools.AssertGone(started);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task The_shared_pools_workers_end_when_its_process_exits()
    {
        BufferedCommandResult result = await TestPools.RunTestHostAsync("shared");

        result.ExitCode.Should().Be(0, result.StandardError);
        string[] lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().Contain("same True");
        int[] workers = [.. lines.Single(l => l.StartsWith("pids ", StringComparison.Ordinal))[5..].Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture))];
        workers.Should().HaveCount(Environment.ProcessorCount);
        foreach (int worker in workers)
        {
            OrphanTests.WaitForExit(worker, TimeSpan.FromSeconds(5)).Should().BeTrue($"worker {worker} of the shared pool must end with its process");
        }
    }
}
