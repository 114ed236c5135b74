namespace Pool.Tests.Shipping;

/// <summary>What people write ships and runs in a real worker, with the captured values it was given.</summary>
public class ClosureShippingTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task A_closure_over_locals_and_parameters_runs_in_a_worker_with_the_captured_values()
    {
        (int Value, int Process)[] results = await OffsetByAsync(Pool, 100, new[] { 1, 2, 3 }).Within();

        results.Select(r => r.Value).Should().Equal(111, 112, 113);
        results.Should().OnlyContain(r => r.Process != Environment.ProcessId);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_over_a_megabyte_array_uses_it_whole_in_the_worker()
    {
        // The captured array travels with the function (in its Bind frame), not as an argument block.
        double[] weights = [.. Enumerable.Range(0, 1 << 17).Select(i => (double)(i % 10))];

        double[] results = await Pool.MapAsync(i => weights[i] * weights.Length, new[] { 3, 17, (1 << 17) - 1 }).Within();

        results.Should().Equal(3.0 * (1 << 17), 7.0 * (1 << 17), 1.0 * (1 << 17));
    }

    [Fact(Timeout = 60_000)]
    public async Task Changes_to_captured_variables_in_a_worker_do_not_flow_back()
    {
        var seen = new List<int> { 1, 2 };
        int calls = 0;

        int[] counts = await Pool.MapAsync(x => { seen.Add(x); calls++; return seen.Count; }, new[] { 7, 8, 9 }).Within();

        counts.Should().OnlyContain(count => count >= 3, "each worker changes its own copy");
        seen.Should().Equal(1, 2);
        calls.Should().Be(0);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_instance_method_of_a_user_object_runs_on_a_copy_with_its_private_state()
    {
        var scorer = new Scorer([1.0, 10.0, 100.0], "linear");

        double[] scores = await Pool.MapAsync(scorer.Score, new[] { new[] { 1.0, 2.0, 3.0 }, [0.5, 0.0, 0.0] }).Within();
        string described = Pool.Apply(scorer.Describe, 4);

        scores.Should().Equal(321.0, 0.5);
        described.Should().StartWith("linear:4:").And.NotEndWith($":{Environment.ProcessId}");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_captured_object_of_your_own_type_that_JSON_cannot_rebuild_faithfully_is_copied_field_by_field()
    {
        var config = new Unbindable(4);
        var tally = new Tally().Add(5);

        (await Pool.MapAsync(x => x + config.Value + tally.Count, new[] { 1 }).Within()).Should().Equal(1 + 8 + 5);
    }

    [Fact(Timeout = 60_000)]
    public async Task Private_fields_of_base_classes_and_virtual_methods_come_along()
    {
        Model model = new Doubler(bias: 5);

        (await Pool.MapAsync(model.Predict, new[] { 1, 2 }).Within()).Should().Equal(7, 9);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_lambda_or_local_function_capturing_this_runs_on_a_copy_of_the_object()
    {
        var pricing = new Pricing(rate: 2.0) { Fee = 0.25 };

        (await Task.Run(() => pricing.PriceAll(Pool, [1.0, 2.0])).Within()).Should().Equal(2.25, 4.25);
        (await Task.Run(() => pricing.PriceWithLocalFunction(Pool, [1.0, 2.0])).Within()).Should().Equal(1.5, 3.5);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_target_is_serialized_once_per_call_and_rebuilt_once_per_worker()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2);
        var counted = new Counted { Value = 1000 };
        int writesBefore = CountingConverter.Writes;

        int[] rebuilds = await pool.MapAsync(_ => CountingConverter.Reads + counted.Value, Enumerable.Range(0, 100), chunkSize: 1).Within();

        CountingConverter.Writes.Should().Be(writesBefore + 1, "the target is serialized at the call, not per task");
        rebuilds.Should().OnlyContain(r => r == 1001, "each worker rebuilds it once for the call");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_ships_even_when_its_scope_also_captured_something_unshippable_that_it_does_not_use()
    {
        int offset = 5;
        var log = new MemoryStream();
        Action write = () => log.WriteByte(1);

        int[] results = await Pool.MapAsync(x => x + offset, new[] { 1, 2 }).Within();

        results.Should().Equal(6, 7);
        write.Should().NotBeNull();
    }

    [Fact(Timeout = 60_000)]
    public async Task Local_functions_ship_capturing_or_not_and_calling_each_other()
    {
        int factor = 3;
        int bias = 1;

        (await Pool.MapAsync(Plain, new[] { 1, 2 }).Within()).Should().Equal(2, 3);
        (await Pool.MapAsync(Scaled, new[] { 1, 2 }).Within()).Should().Equal(4, 7);
        (await Pool.MapAsync(StaticLocal, new[] { 1, 2 }).Within()).Should().Equal(-1, -2);

        static int Plain(int x) => x + 1;
        int Scaled(int x) => Biased(x * factor);
        int Biased(int x) => x + bias;
        static int StaticLocal(int x) => -x;
    }

    [Fact(Timeout = 60_000)]
    public async Task Static_lambdas_ship()
    {
        (await Pool.MapAsync(static x => x * 2, new[] { 1, 2 }).Within()).Should().Equal(2, 4);
    }

    [Fact(Timeout = 60_000)]
    public async Task Nested_closures_ship_with_the_variables_of_every_scope()
    {
        int outer = 100;
        var results = new List<int[]>();
        for (int i = 1; i <= 2; i++)
        {
            int inner = i * 10;
            results.Add(await Pool.MapAsync(x => x + inner + outer, new[] { 1, 2 }).Within());
        }

        results[0].Should().Equal(111, 112);
        results[1].Should().Equal(121, 122);
    }

    [Fact(Timeout = 60_000)]
    public async Task Generic_methods_ship_closed_over_their_type_arguments()
    {
        (await Pool.MapAsync(Generic.Pair, new[] { "a", "b" }).Within()).Should().Equal(("a", "a"), ("b", "b"));
        (await Pool.MapAsync(Generic.Pair<double>, new[] { 1.5 }).Within()).Should().Equal((1.5, 1.5));
        Generic.Repeat(Pool, "x", [1, 0]).Should().Equal("x", null);
        Generic.Repeat(Pool, 2.5, [1]).Should().Equal(2.5);
    }

    [Fact(Timeout = 60_000)]
    public async Task Methods_of_generic_classes_and_delegates_other_than_the_methods_own_Func_ship()
    {
        (await Pool.MapAsync(Box<int>.Twice, new[] { 1, 2 }).Within()).Should().BeEquivalentTo(new[] { new[] { 1, 1 }, new[] { 2, 2 } });
        (await Pool.MapAsync(Box<string>.Twice, new[] { "a" }).Within()).Should().BeEquivalentTo(new[] { new[] { "a", "a" } });
        Func<string, int> length = Widened.Length;
        (await Pool.MapAsync(length, new[] { "abc", "de" }).Within()).Should().Equal(3, 2);
    }

    [Fact(Timeout = 60_000)]
    public async Task Methods_of_nested_and_internal_types_ship()
    {
        var nested = new Multiplier(7);

        (await Pool.MapAsync(nested.Times, new[] { 1, 2 }).Within()).Should().Equal(7, 14);
        (await Pool.MapAsync(InternalMath.Triple, new[] { 1, 2 }).Within()).Should().Equal(3, 6);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_field_marked_NonSerialized_stays_home_and_the_worker_sees_its_default()
    {
        var logger = new SkippingLogger("p");

        (await Pool.MapAsync(logger.Tag, new[] { 1 }).Within()).Should().Equal("p1:no sink");
    }

    [Fact(Timeout = 60_000)]
    public async Task Many_calls_with_closures_keep_working_as_workers_forget_each_call()
    {
        for (int call = 0; call < 50; call++)
        {
            int captured = call;
            (await Pool.ApplyAsync(x => x + captured, 1).Task.Within()).Should().Be(call + 1);
        }

        int last = 7;
        (await Pool.MapAsync(x => x * last, Enumerable.Range(0, 100), chunkSize: 3).Within()).Should().Equal(Enumerable.Range(0, 100).Select(x => x * 7));
    }

    [Fact(Timeout = 60_000)]
    public async Task An_initializer_can_be_a_closure_too()
    {
        string greeting = "hello from the host";
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions().WithInitializer(() => InitProbe.Value = greeting));

        (await pool.ApplyAsync(() => InitProbe.Value).Task.Within()).Should().Be(greeting);
    }

    [Fact(Timeout = 60_000)]
    public async Task W10_a_lambda_a_closure_an_instance_method_a_local_function_and_an_async_function_each_run_in_a_worker()
    {
        int threshold = 2;
        var scorer = new Scorer([2.0], "w10");

        (await Pool.MapAsync(x => x * x, new[] { 3 }).Within()).Should().Equal(9);
        (await Pool.MapAsync(x => x > threshold, new[] { 1, 3 }).Within()).Should().Equal(false, true);
        (await Pool.MapAsync(scorer.Score, new[] { new[] { 4.0 } }).Within()).Should().Equal(8.0);
        (await Pool.MapAsync(Halve, new[] { 8 }).Within()).Should().Equal(4);
        (await Pool.MapAsync(async x => { await Task.Yield(); return x + threshold; }, new[] { 1 }).Within()).Should().Equal(3);
        (await Pool.MapAsync(ProcessIdAsync, new[] { 0 }).Within()).Single().Should().NotBe(Environment.ProcessId);

        int Halve(int x) => x / threshold;
        static async Task<int> ProcessIdAsync(int _)
        {
            await Task.Yield();
            return Environment.ProcessId;
        }
    }

    private static Task<(int Value, int Process)[]> OffsetByAsync(ProcessPool pool, int offset, int[] items)
    {
        int extra = 10;
        return pool.MapAsync(x => (x + offset + extra, Environment.ProcessId), items);
    }

    private sealed class Multiplier(int factor)
    {
        private readonly int _factor = factor;

        public int Times(int x) => x * _factor;
    }
}
