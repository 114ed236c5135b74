namespace Pool.Tests.Observability;

public sealed class ProgressTests
{
    /// <summary>Records every report as it arrives, with the thread it arrived on.</summary>
    private sealed class Recorder : IProgress<PoolProgress>
    {
        private readonly Lock _lock = new();
        private readonly List<(PoolProgress Report, bool OnThreadPool)> _reports = [];

        public TaskCompletionSource<PoolProgress> Final { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public (PoolProgress Report, bool OnThreadPool)[] Reports
        {
            get
            {
                lock (_lock)
                {
                    return [.. _reports];
                }
            }
        }

        public void Report(PoolProgress value)
        {
            lock (_lock)
            {
                _reports.Add((value, Thread.CurrentThread.IsThreadPoolThread));
            }

            if (value.IsFinal)
            {
                Final.TrySetResult(value);
            }
        }
    }

    [Fact]
    public async Task A_map_reports_growing_counts_on_the_thread_pool_and_ends_with_every_task()
    {
        var recorder = new Recorder();
        ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { Progress = recorder, ProgressInterval = TimeSpan.FromMilliseconds(30) });
        try
        {
            // Long enough that a report due at the first interval runs before the final one even when the suite keeps the
            // thread pool busy (a report still queued when the call ends is folded into the final one).
            int[] results = await pool.MapAsync(Functions.Sleep, Enumerable.Repeat(20, 40), chunkSize: 1).Within();
            results.Should().HaveCount(40);
            PoolProgress final = await recorder.Final.Task.Within();

            final.Should().Match<PoolProgress>(p => p.Completed == 40 && p.Failed == 0 && p.Total == 40 && p.Operation == "Map" && p.IsFinal);
            (PoolProgress Report, bool OnThreadPool)[] reports = recorder.Reports;
            reports.Should().HaveCountGreaterThan(1, "40 tasks of 20 ms on 2 workers take about 400 ms, several intervals of 30 ms");
            reports.Select(r => r.Report.Completed).Should().BeInAscendingOrder();
            reports.Select(r => r.Report.Elapsed).Should().BeInAscendingOrder();
            reports.Should().OnlyContain(r => r.OnThreadPool && r.Report.CallId == final.CallId);
            reports.Count(r => r.Report.IsFinal).Should().Be(1);
            reports[^1].Report.IsFinal.Should().BeTrue();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    [Fact]
    public async Task An_imap_reports_no_total_and_counts_failures()
    {
        var recorder = new Recorder();
        ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { Progress = recorder });
        try
        {
            int count = 0;
            await foreach (Outcome<int> _ in pool.ImapOutcomesAsync(Functions.FailOnSeven, ToAsync(Enumerable.Range(0, 10))))
            {
                count++;
            }

            count.Should().Be(10);
            PoolProgress final = await recorder.Final.Task.Within();
            final.Should().Match<PoolProgress>(p => p.Completed == 9 && p.Failed == 1 && p.Done == 10 && p.Total == null && p.IsFinal);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    /// <summary>A synchronous handler that only counts: what a console progress line does.</summary>
    private sealed class Counter : IProgress<PoolProgress>
    {
        private int _finals;

        public int Finals => Volatile.Read(ref _finals);

        public PoolProgress Last { get; private set; }

        public void Report(PoolProgress value)
        {
            Last = value;
            if (value.IsFinal)
            {
                Interlocked.Increment(ref _finals);
            }
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Each_call_made_with_its_own_progress_gets_its_final_report_before_it_returns()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            await Task.Run(() =>
            {
                for (int i = 0; i < 20; i++)
                {
                    var counter = new Counter();
                    int[] squares = pool.WithProgress(counter).Map(Functions.Square, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], chunkSize: 1);
                    squares.Should().HaveCount(10);
                    counter.Finals.Should().Be(1, $"call {i} returned after its final report");
                    counter.Last.Should().Match<PoolProgress>(p => p.IsFinal && p.Completed == 10 && p.Total == 10 && p.Operation == "Map");
                }
            }).Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task An_imap_over_an_array_reports_its_total_and_ends_after_its_final_report()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            var unordered = new Counter();
            var ordered = new Counter();
            await Task.Run(() =>
            {
                int[] items = [.. Enumerable.Range(0, 50)];
                pool.WithProgress(unordered).ImapUnordered(Functions.Square, items).Should().HaveCount(50);
                unordered.Finals.Should().Be(1, "the enumeration ended after the final report");
                pool.WithProgress(ordered).Imap(Functions.FailOnSeven, new List<int> { 1, 2, 3 }).Should().HaveCount(3);
                ordered.Finals.Should().Be(1);
            }).Within();

            unordered.Last.Should().Match<PoolProgress>(p => p.Total == 50 && p.Completed == 50 && p.Operation == "ImapUnordered");
            ordered.Last.Should().Match<PoolProgress>(p => p.Total == 3 && p.Done == 3);

            var other = new Counter();
            pool.WithProgress(other).Map(Functions.Square, [1]).Should().Equal(1);
            unordered.Last.Total.Should().Be(50, "a call's reports go to its own progress only");
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    private static async IAsyncEnumerable<int> ToAsync(IEnumerable<int> items)
    {
        foreach (int item in items)
        {
            await Task.Yield();
            yield return item;
        }
    }
}
