namespace Pool.Tests.Integration;

public class ImapTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Theory(Timeout = 60_000)]
    [InlineData(null)]
    [InlineData(4)]
    public async Task Imap_yields_results_in_input_order(int? chunkSize)
    {
        var results = new List<int>();
        await foreach (int value in Pool.ImapAsync(Functions.Square, Enumerable.Range(0, 200), chunkSize))
        {
            results.Add(value);
        }

        results.Should().Equal(Enumerable.Range(0, 200).Select(x => x * x));
    }

    /// <summary>
    /// Python's imap clamps a chunk to the items there are. A chunk size up to int.MaxValue must work as Map's does, and
    /// cost memory for the items that arrive, not for the chunk size (it hung at int.MaxValue, and 1 &lt;&lt; 26 took 512 MiB).
    /// </summary>
    [Theory(Timeout = 60_000)]
    [InlineData(int.MaxValue)]
    [InlineData(int.MaxValue - 1)]
    [InlineData(1 << 26)]
    public async Task A_chunk_size_far_above_the_input_works_and_allocates_for_the_items_only(int chunkSize)
    {
        await Task.Yield();
        long allBefore = GC.GetTotalAllocatedBytes(precise: true);

        Pool.Imap(Functions.Square, new[] { 1, 2, 3 }, chunkSize).Should().Equal(1, 4, 9);
        Pool.ImapUnordered(Functions.Square, Enumerable.Range(0, 5000), chunkSize).Select(r => r.Result).Order().Should().Equal(Enumerable.Range(0, 5000).Select(x => x * x));

        // The whole process's allocations (other test classes run meanwhile): far below the 512 MiB one array of 1 << 26 takes.
        (GC.GetTotalAllocatedBytes(precise: true) - allBefore).Should().BeLessThan(128 << 20, "the chunk's array grows with the items that arrive");
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_works_as_a_plain_enumerable_for_scripts()
    {
        await Task.Yield();
        Pool.Imap(Functions.Increment, new[] { 1, 2, 3 }).Should().Equal(2, 3, 4);
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_reads_an_endless_input_lazily_and_stops_when_abandoned()
    {
        var source = new CountingSequence();
        int taken = 0;
        await foreach (int value in Pool.ImapAsync(Functions.Increment, source, chunkSize: 2))
        {
            value.Should().Be(taken + 1);
            if (++taken == 300)
            {
                break;
            }
        }

        long bound = 300 + Math.Max(4L * Pool.WorkerCount * 2, 256) + 2;
        source.Pulled.Should().BeLessThanOrEqualTo(bound, "Imap reads at most max(4 x workers x chunkSize, 256) items ahead of the consumer");
        await source.Disposed.Task.Within();
        (await Pool.MapAsync(Functions.Square, new[] { 4 }).Within()).Should().Equal([16], "an abandoned Imap frees the pool");
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_without_a_chunk_size_batches_tiny_tasks_and_keeps_their_order()
    {
        int expected = 1;
        await foreach (int value in Pool.ImapAsync(Functions.Increment, Enumerable.Range(0, 50_000)))
        {
            value.Should().Be(expected++);
        }

        expected.Should().Be(50_001);
    }

    /// <summary>
    /// A consumer slower than the workers keeps the window full, so the producer sends partial chunks and reuses the
    /// chunks (and their argument arrays) of completed ones: every value must still be its own, in order, with a
    /// reference type whose arrays are cleared for reuse, and with fixed and adapting chunk sizes.
    /// </summary>
    [Theory(Timeout = 60_000)]
    [InlineData(null)]
    [InlineData(3)]
    [InlineData(64)]
    public async Task A_consumer_slower_than_the_workers_gets_every_value_in_order(int? chunkSize)
    {
        int expected = 0;
        await foreach (string? value in Pool.ImapAsync(Functions.Echo, Enumerable.Range(0, 20_000).Select(i => (string?)$"item {i}"), chunkSize))
        {
            value.Should().Be($"item {expected}");
            if (++expected % 2_000 == 0)
            {
                await Task.Delay(20);
            }
        }

        expected.Should().Be(20_000);
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_without_a_chunk_size_spreads_long_tasks_over_the_workers()
    {
        int[] pids = [.. await Pool.ImapAsync(Functions.ProcessIdAfter, Enumerable.Repeat(300, 4)).ToArrayAsync()];

        pids.Distinct().Should().HaveCount(Pool.WorkerCount, "long tasks are not batched onto one worker");
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_over_an_async_source_yields_in_order()
    {
        var results = new List<int>();
        await foreach (int value in Pool.ImapAsync(Functions.Square, Numbers(30)))
        {
            results.Add(value);
        }

        results.Should().Equal(Enumerable.Range(0, 30).Select(x => x * x));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_failed_task_throws_at_its_position_and_the_enumeration_can_go_on()
    {
        IAsyncEnumerator<int> results = Pool.ImapAsync(Functions.FailOnSeven, Enumerable.Range(5, 5), chunkSize: 2).GetAsyncEnumerator();
        var seen = new List<object>();
        while (true)
        {
            try
            {
                if (!await results.MoveNextAsync())
                {
                    break;
                }

                seen.Add(results.Current);
            }
            catch (ArgumentException)
            {
                seen.Add((long)seen.Count);
            }
        }

        await results.DisposeAsync();
        seen.Should().Equal(5, 6, 2L, 8, 9);
    }

    [Fact(Timeout = 60_000)]
    public async Task ImapUnordered_yields_every_result_with_its_input_index()
    {
        var results = new List<(long Index, int Result)>();
        await foreach ((long Index, int Result) item in Pool.ImapUnorderedAsync(Functions.Sleep, new[] { 300, 0, 0, 0 }))
        {
            results.Add(item);
        }

        results.Should().BeEquivalentTo(new[] { (0L, 300), (1L, 0), (2L, 0), (3L, 0) });
        results[0].Index.Should().NotBe(0, "the slow first task finishes after the quick ones");
    }

    [Fact(Timeout = 60_000)]
    public async Task ImapOutcomes_yields_failures_as_outcomes()
    {
        Outcome<int>[] outcomes = [.. Pool.ImapOutcomes(Functions.FailOnSeven, new[] { 6, 7, 8 })];
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        await Task.CompletedTask;
    }

    [Fact(Timeout = 60_000)]
    public async Task The_results_of_one_Imap_can_be_enumerated_once()
    {
        IAsyncEnumerable<int> results = Pool.ImapAsync(Functions.Square, new[] { 1 });
        await foreach (int _ in results)
        {
        }

        Action again = () => results.GetAsyncEnumerator();
        again.Should().Throw<InvalidOperationException>().WithMessage("*enumerated once*");
    }

    [Fact(Timeout = 60_000)]
    public async Task An_input_that_throws_surfaces_after_the_items_before_it()
    {
        var results = new List<int>();
        Func<Task> enumerate = async () =>
        {
            await foreach (int value in Pool.ImapAsync(Functions.Increment, ThrowsAfter(3)))
            {
                results.Add(value);
            }
        };

        await enumerate.Should().ThrowAsync<FormatException>().WithMessage("input broke");
        results.Should().Equal(1, 2, 3);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_cancelled_Imap_throws_operation_cancelled()
    {
        using var cancellation = new CancellationTokenSource();
        Func<Task> enumerate = async () =>
        {
            await foreach (int value in Pool.ImapAsync(Functions.Increment, new CountingSequence(), cancellationToken: cancellation.Token))
            {
                if (value == 10)
                {
                    await cancellation.CancelAsync();
                }
            }
        };

        await enumerate.Should().ThrowAsync<OperationCanceledException>();
    }

    private static async IAsyncEnumerable<int> Numbers(int count)
    {
        for (int i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    private static IEnumerable<int> ThrowsAfter(int count)
    {
        for (int i = 0; i < count; i++)
        {
            yield return i;
        }

        throw new FormatException("input broke");
    }

    /// <summary>0, 1, 2, ... forever, counting how many were pulled.</summary>
    private sealed class CountingSequence : IEnumerable<int>
    {
        private long _pulled;

        public long Pulled => Interlocked.Read(ref _pulled);

        public TaskCompletionSource Disposed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IEnumerator<int> GetEnumerator()
        {
            try
            {
                for (int i = 0; ; i++)
                {
                    Interlocked.Increment(ref _pulled);
                    yield return i;
                }
            }
            finally
            {
                Disposed.TrySetResult();
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// An application passes its stopping token to every call. A finished Imap must not stay registered on it: each one,
    /// with its chunks and its progress reporter, was kept until the token was cancelled (about 4 KB a call, 40 MB after
    /// 10,000 calls, with a token that is never cancelled). Map and Apply released theirs already. Found by a sixth audit.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task A_finished_Imap_is_not_kept_by_a_long_lived_token()
    {
        using var stopping = new CancellationTokenSource();
        WeakReference[] reporters = EnumerateImapsWithProgress(Pool, stopping.Token);

        for (int attempt = 0; attempt < 50 && reporters.Any(r => r.IsAlive); attempt++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(20);
        }

        reporters.Where(r => r.IsAlive).Should().BeEmpty("a call that has ended is not referred to by the token it was given");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference[] EnumerateImapsWithProgress(ProcessPool pool, CancellationToken token)
    {
        var reporters = new List<WeakReference>();
        for (int i = 0; i < 4; i++)
        {
            var progress = new CountingProgress();
            reporters.Add(new WeakReference(progress));
            ProcessPool view = pool.WithProgress(progress);
            (i % 2 == 0 ? view.Imap(Functions.Square, [1, 2, 3], cancellationToken: token).ToList()
                : view.ImapUnordered(Functions.Square, [1, 2, 3], cancellationToken: token).Select(r => r.Result).ToList()).Should().HaveCount(3);
        }

        return [.. reporters];
    }

    private sealed class CountingProgress : IProgress<PoolProgress>
    {
        public int Reports;

        public void Report(PoolProgress value) => Interlocked.Increment(ref Reports);
    }
}
