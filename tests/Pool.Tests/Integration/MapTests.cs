namespace Pool.Tests.Integration;

public class MapTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Theory(Timeout = 60_000)]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public async Task Map_returns_results_in_input_order(int? chunkSize)
    {
        int[] results = await Pool.MapAsync(Functions.Square, Enumerable.Range(0, 500), chunkSize).Within();
        results.Should().Equal(Enumerable.Range(0, 500).Select(x => x * x));
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_runs_the_function_in_the_worker_processes()
    {
        int[] processes = await Pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, 50), chunkSize: 1).Within();
        processes.Should().NotContain(Environment.ProcessId);
        processes.Distinct().Should().BeSubsetOf(Pool.ProcessIds);
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_of_an_empty_input_returns_an_empty_array_at_once()
    {
        Task<int[]> map = Pool.MapAsync(Functions.Square, Array.Empty<int>());
        map.IsCompletedSuccessfully.Should().BeTrue();
        (await map).Should().BeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_throws_the_first_failure_in_input_order_once_every_task_has_run()
    {
        Func<Task> map = () => Pool.MapAsync(Functions.FailOnSeven, Enumerable.Range(0, 20), chunkSize: 3);
        var error = (await map.Should().ThrowAsync<ArgumentException>()).Which;

        error.Message.Should().StartWith("seven is not allowed (got 7)");
        error.ParamName.Should().Be("x");
        error.StackTrace.Should().Contain(nameof(Functions.FailOnSeven));
    }

    [Fact(Timeout = 60_000)]
    public async Task MapOutcomes_reports_every_value_and_every_failure()
    {
        Outcome<int>[] outcomes = await Pool.MapOutcomesAsync(Functions.FailOnSeven, new[] { 5, 7, 9, 7 }).Within();

        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true, false);
        outcomes[0].Value.Should().Be(5);
        outcomes[3].Index.Should().Be(3);
        outcomes[1].Exception.Should().BeOfType<ArgumentException>();
        outcomes[1].Invoking(o => o.GetValueOrThrow()).Should().Throw<ArgumentException>();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_remote_exception_keeps_its_inner_exceptions()
    {
        Func<Task> apply = () => Pool.ApplyAsync(Functions.FailWithInner, 1).Task;
        var error = (await apply.Should().ThrowAsync<InvalidOperationException>()).Which;
        error.InnerException.Should().BeOfType<FormatException>().Which.Message.Should().Be("inner cause");
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_carries_records_tuples_arrays_collections_and_NaN()
    {
        (await Pool.MapAsync(Functions.Move, new[] { new Point(1, 2), new Point(-1, double.NaN) }).Within())
            .Should().Equal(new Point(2, 4), new Point(0, double.NaN));
        (await Pool.MapAsync(Functions.Swap, new[] { ("a", 1), ("b", 2) }).Within()).Should().Equal((1, "a"), (2, "b"));
        (await Pool.MapAsync(Functions.Doubled, new[] { new[] { 1.0, 2.5 }, [] }).Within())[0].Should().Equal(2.0, 5.0);
        (await Pool.MapAsync(Functions.NotANumber, new[] { 1.0 }).Within()).Single().Should().Be(double.NaN);
        (await Pool.MapAsync(Functions.Echo, new[] { "é", null, string.Empty }).Within()).Should().Equal("é", null, string.Empty);
        (await Pool.MapAsync(Functions.Range, new[] { 3 }).Within()).Single().Should().Equal(0, 1, 2);
        (await Pool.MapAsync(Functions.Count, new[] { new[] { "a", "b", "a" } }).Within()).Single()["a"].Should().Be(2);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_array_seen_as_a_sequence_of_a_base_type_maps_like_any_other_input()
    {
        // Arrays are mapped without a copy; one of a derived element type (covariance) is copied first.
        IEnumerable<object> words = new[] { "a", "b" };
        (await Pool.MapAsync(Functions.NotNull, words).Within()).Should().Equal(1, 1);
        (await Pool.MapAsync(Functions.Square, new[] { 1, 2, 3 }).Within()).Should().Equal(1, 4, 9);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(null)]
    [InlineData(500)]
    [InlineData(5000)]
    public async Task Every_tiny_task_gets_its_own_outcome_when_some_fail_among_thousands(int? chunkSize)
    {
        // Tiny tasks with raw results run in batches in the worker; a failure must cost exactly its own task.
        Outcome<long>[] outcomes = await Pool.MapOutcomesAsync(Functions.FailSometimes, Enumerable.Range(0, 5000), chunkSize).Within();

        for (int i = 0; i < outcomes.Length; i++)
        {
            if (i % 97 == 0 || i is 499 or 500)
            {
                outcomes[i].Exception.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Contain($"no {i}");
            }
            else
            {
                outcomes[i].Value.Should().Be(i * 3L);
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Work_waiting_for_room_moves_on_as_chunks_finish_even_when_calls_come_from_many_threads()
    {
        // Chunks of one task fill every worker's window at once; the rest waits in the dispatcher's queue and
        // goes out only when a finished chunk wakes it. A lost wake-up would leave a call waiting forever.
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        Task<int[]>[] calls = [.. Enumerable.Range(0, 8).Select(c => Task.Run(() => pool.MapAsync(Functions.Square, Enumerable.Range(c * 1000, 1000), chunkSize: 1)))];

        int[][] results = await Task.WhenAll(calls).Within();

        for (int c = 0; c < calls.Length; c++)
        {
            results[c].Should().Equal(Enumerable.Range(c * 1000, 1000).Select(x => x * x));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Large_arrays_cross_both_ways_whole_among_small_ones_and_nulls()
    {
        // Arrays of 128 KiB and more travel in block frames of their own, read straight into the new array.
        double[][] inputs = [[.. Enumerable.Range(0, 300_000).Select(i => i * 0.5)], [1, 2], null!, [], [.. Enumerable.Range(0, 16_384).Select(i => (double)i)]];
        double[]?[] results = await Pool.MapAsync(Functions.DoubledOrNull, inputs, chunkSize: 5).Within();

        results.Should().HaveCount(5);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is null)
            {
                results[i].Should().BeNull();
            }
            else
            {
                results[i].Should().Equal(inputs[i].Select(v => v * 2));
            }
        }

        double[] doubles = [.. Enumerable.Repeat(0.25, 200_000)];
        Guid[] guids = [.. Enumerable.Range(0, 20_000).Select(_ => Guid.NewGuid())];
        DayOfWeek[] days = [.. Enumerable.Range(0, 100_000).Select(i => (DayOfWeek)(i % 7))];
        (await Pool.StarMapAsync(Functions.Describe, [(doubles, guids, days), (doubles, guids, days)]).Within())
            .Should().AllBe($"200000:50000|20000:{guids[^1]}|100000:{days.Count(d => d == DayOfWeek.Friday)}");
    }

    [Fact(Timeout = 60_000)]
    public async Task Many_one_MiB_arguments_each_arrive_whole_while_workers_hold_only_a_few_ahead()
    {
        // A worker holds at most 2 MiB of arguments beyond two chunks: the rest wait in the host until it has room.
        byte[][] inputs = [.. Enumerable.Range(0, 40).Select(i => Enumerable.Repeat((byte)i, (1 << 20) + i).ToArray())];
        (int, byte, byte)[] expected = [.. Enumerable.Range(0, 40).Select(i => ((1 << 20) + i, (byte)i, (byte)i))];

        (await Pool.MapAsync(Functions.Ends, inputs).Within()).Should().Equal(expected);
        var unordered = new List<(int, byte, byte)>();
        await foreach ((long _, (int, byte, byte) ends) in Pool.ImapUnorderedAsync(Functions.Ends, inputs.ToAsyncEnumerable()))
        {
            unordered.Add(ends);
        }

        unordered.Should().BeEquivalentTo(expected);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_function_that_returns_its_own_buffer_each_time_sends_what_it_returned_for_each_task()
    {
        int[][] results = await Pool.MapAsync(Functions.FilledSharedBuffer, Enumerable.Range(0, 30), chunkSize: 30).Within();

        results.Select(r => (r.Length, r.Distinct().Single())).Should().Equal(Enumerable.Range(0, 30).Select(i => (40_000, i)));
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_over_several_sequences_zips_them_and_stops_at_the_shortest()
    {
        string[] results = await Pool.MapAsync(Functions.Concat, new[] { "a", "b", "c" }, new[] { 1, 2 }).Within();
        results.Should().Equal("a1", "b2");
        (await Pool.MapAsync(Functions.Add3, [1, 2], [10, 20], [100, 200]).Within()).Should().Equal(111, 222);
        (await Pool.MapAsync(Functions.Add4, [1.0], [2.0], [3.0], [4.0]).Within()).Should().Equal(10.0);
    }

    /// <summary>pathos users write <c>p.map(f, xs, itertools.repeat(c))</c>: zip is lazy, so a sequence longer than the
    /// shortest, endless even, is read only as far as it is used (each used to be read to its end first: a hang).</summary>
    [Fact(Timeout = 60_000)]
    public async Task Map_over_several_sequences_reads_the_longer_ones_only_as_far_as_the_shortest()
    {
        (await Pool.MapAsync(Functions.Concat, new[] { "a", "b" }, Endless()).Within()).Should().Equal("a0", "b1");
        (await Pool.MapAsync(Functions.Add3, Endless(), [10, 20], Endless()).Within()).Should().Equal(10, 22);
        (await Pool.MapAsync(Functions.Add4, [1.0], Endless().Select(i => (double)i), [3.0], [4.0]).Within()).Should().Equal(8.0);

        static IEnumerable<int> Endless()
        {
            for (int i = 0; ; i++)
            {
                yield return i;
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task StarMap_applies_the_function_to_the_elements_of_each_tuple()
    {
        (await Pool.StarMapAsync(Functions.Concat, new[] { ("x", 1), ("y", 2) }).Within()).Should().Equal("x1", "y2");
        Pool.StarMap(Functions.Add3, new[] { (1, 2, 3) }).Should().Equal(6);
    }

    [Fact(Timeout = 60_000)]
    public async Task Lambdas_that_capture_nothing_run_in_workers()
    {
        (await Pool.MapAsync(static (int x) => x * 3, new[] { 1, 2 }).Within()).Should().Equal(3, 6);
        (await Pool.MapAsync((string s) => s.ToUpperInvariant(), new[] { "a" }).Within()).Should().Equal("A");
    }

    [Fact]
    public void A_chunk_size_of_zero_is_an_argument_error()
    {
        Action map = () => Pool.Map(Functions.Square, new[] { 1 }, chunkSize: 0);
        map.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("chunkSize");
    }

    [Fact]
    public void Null_function_or_items_are_argument_errors()
    {
        Action noFunction = () => Pool.Map<int, int>(null!, new[] { 1 });
        noFunction.Should().Throw<ArgumentNullException>().WithParameterName("fn");
        Action noItems = () => Pool.Map<int, int>(Functions.Square, null!);
        noItems.Should().Throw<ArgumentNullException>().WithParameterName("items");
    }

    [Fact]
    public void An_argument_that_cannot_be_serialized_is_refused_at_the_call()
    {
        Action map = () => Pool.Map((Action a) => 1, new Action[] { static () => { } });
        map.Should().Throw<ArgumentException>().WithParameterName("items").WithMessage("*Action*cannot be sent to a worker*");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_cancelled_map_throws_operation_cancelled()
    {
        using var cancellation = new CancellationTokenSource();
        Task<int[]> map = Pool.MapAsync(Functions.Sleep, Enumerable.Repeat(50, 40), chunkSize: 1, cancellationToken: cancellation.Token);
        cancellation.Cancel();
        await map.Invoking(async m => await m).Should().ThrowAsync<OperationCanceledException>();
        (await Pool.MapAsync(Functions.Square, new[] { 3 }).Within()).Should().Equal(9);
    }

    [Fact(Timeout = 60_000)]
    public async Task Many_threads_can_use_one_pool_at_once()
    {
        Task<int[]>[] calls = [.. Enumerable.Range(0, 16).Select(t => Task.Run(() => Pool.MapAsync(Functions.Increment, Enumerable.Range(t * 100, 100), chunkSize: 1 + (t % 5))))];
        int[][] results = await Task.WhenAll(calls).Within();
        for (int t = 0; t < results.Length; t++)
        {
            results[t].Should().Equal(Enumerable.Range((t * 100) + 1, 100));
        }
    }
}
