namespace Pool.Tests.Shipping;

/// <summary>
/// Async functions, functions that take a token, and several arguments, written as people write them: each
/// form compiles to one overload (the ones below would not build if a call were ambiguous) and runs in a worker.
/// </summary>
public class FunctionShapeTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task Plain_async_and_token_lambdas_each_pick_their_overload_and_return_values_not_tasks()
    {
        int[] xs = [1, 2, 3];
        int offset = 10;

        int[] plain = await Pool.MapAsync(x => x + 1, xs).Within();
        int[] awaited = await Pool.MapAsync(async x => { await Task.Yield(); return x + offset; }, xs).Within();
        int[] completed = await Pool.MapAsync(x => Task.FromResult(x * 2), xs).Within();
        int[] valueTask = await Pool.MapAsync(async ValueTask<int> (x) => { await Task.Yield(); return -x; }, xs).Within();
        bool[] token = await Pool.MapAsync((x, ct) => ct.CanBeCanceled, xs).Within();
        int[] asyncToken = await Pool.MapAsync(async (x, ct) => { await Task.Delay(1, ct); return x * offset; }, xs).Within();

        plain.Should().Equal(2, 3, 4);
        awaited.Should().Equal(11, 12, 13);
        completed.Should().Equal(2, 4, 6);
        valueTask.Should().Equal(-1, -2, -3);
        token.Should().OnlyContain(canBeCanceled => canBeCanceled, "each task gets a real token");
        asyncToken.Should().Equal(10, 20, 30);
    }

    [Fact(Timeout = 60_000)]
    public async Task Async_method_groups_returning_Task_or_ValueTask_are_awaited_in_the_worker()
    {
        (await Pool.MapAsync(AsyncFunctions.SquareLaterAsync, new[] { 3, 4 }).Within()).Should().Equal(9, 16);
        (await Pool.MapAsync(AsyncFunctions.NegateAsync, new[] { 3 }).Within()).Should().Equal(-3);
        (await Pool.ApplyAsync(AsyncFunctions.SquareLaterAsync, 5).Task.Within()).Should().Be(25);
        (await Task.Run(() => Pool.Apply(async () => { await Task.Yield(); return Environment.ProcessId; })).Within()).Should().NotBe(Environment.ProcessId);
        (await Task.Run(() => Pool.Apply(ct => ct.CanBeCanceled)).Within()).Should().BeTrue();
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_call_takes_async_functions()
    {
        Func<int, Task<int>> twice = async x => { await Task.Yield(); return 2 * x; };
        int[] xs = [1, 2, 3];

        (await Task.Run(() => Pool.Map(twice, xs)).Within()).Should().Equal(2, 4, 6);
        (await Pool.MapOutcomesAsync(twice, xs).Within()).Select(o => o.Value).Should().Equal(2, 4, 6);
        (await Task.Run(() => Pool.Imap(twice, xs).ToArray()).Within()).Should().Equal(2, 4, 6);
        (await Task.Run(() => Pool.ImapUnordered(twice, xs).OrderBy(r => r.Index).Select(r => r.Result).ToArray()).Within()).Should().Equal(2, 4, 6);
        (await Task.Run(() => Pool.ImapOutcomes(twice, xs).Select(o => o.Value).ToArray()).Within()).Should().Equal(2, 4, 6);
        (await Task.Run(() => Pool.Apply(twice, 21)).Within()).Should().Be(42);
        int fromCallback = 0;
        (await Pool.ApplyAsync(twice, 4, callback: r => fromCallback = r).Task.Within()).Should().Be(8);
        fromCallback.Should().Be(8);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_function_taking_a_token_is_cancelled_through_it_without_killing_its_worker()
    {
        ProcessPoolOptions options = Announce.Counting(new ProcessPoolOptions { CancellationGrace = TimeSpan.FromSeconds(30) }, 1, out Task running);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: options);
        int worker = pool.ProcessIds.Single();
        using var cancellation = new CancellationTokenSource();

        AsyncResult<int> waiting = pool.ApplyAsync(AsyncFunctions.WaitForCancellationAsync, 1, cancellationToken: cancellation.Token);
        await running.Within();
        await cancellation.CancelAsync();

        await waiting.Invoking(w => w.Task).Should().ThrowAsync<OperationCanceledException>();
        (await pool.ApplyAsync(() => (TokenProbe.Canceled, Environment.ProcessId)).Task.Within())
            .Should().Be((true, worker), "the function saw its token cancelled, and the same worker runs the next task");
    }

    [Fact(Timeout = 60_000)]
    public async Task Several_arguments_ship_in_Apply_StarMap_and_zipped_Map_with_captured_values()
    {
        int bonus = 1000;

        (await Pool.ApplyAsync((int a, string b) => b + (a + bonus), 1, "x").Task.Within()).Should().Be("x1001");
        (await Pool.ApplyAsync((int a, int b, int c) => a + b + c + bonus, 1, 2, 3).Task.Within()).Should().Be(1006);
        (await Pool.ApplyAsync((int a, int b, int c, int d) => a * b * c * d + bonus, 1, 2, 3, 4).Task.Within()).Should().Be(1024);
        (await Pool.StarMapAsync((int a, int b) => a * b + bonus, new[] { (2, 3), (4, 5) }).Within()).Should().Equal(1006, 1020);
        (await Pool.StarMapAsync((int a, int b, int c) => a + b + c, new[] { (1, 2, 3) }).Within()).Should().Equal(6);
        (await Pool.StarMapAsync((int a, int b, int c, int d) => a + b + c + d, new[] { (1, 2, 3, 4) }).Within()).Should().Equal(10);
        (await Pool.MapAsync((int x, int y) => x - y + bonus, new[] { 10, 20 }, new[] { 1, 2, 3 }).Within()).Should().Equal(1009, 1018);
        (await Pool.MapAsync((int x, int y, int z) => x + y + z, new[] { 1 }, new[] { 2 }, new[] { 3 }).Within()).Should().Equal(6);
        (await Pool.MapAsync((int x, int y, int z, int w) => x + y + z + w, new[] { 1 }, new[] { 2 }, new[] { 3 }, new[] { 4 }).Within()).Should().Equal(10);
    }

    [Fact(Timeout = 60_000)]
    public async Task Several_arguments_ship_as_async_functions_and_with_tokens()
    {
        int bonus = 1;

        (await Pool.StarMapAsync(async (int a, int b) => { await Task.Yield(); return a * b + bonus; }, new[] { (2, 3) }).Within()).Should().Equal(7);
        (await Pool.MapAsync(async (int x, int y, CancellationToken ct) => { await Task.Delay(1, ct); return x + y; }, new[] { 1 }, new[] { 2 }).Within()).Should().Equal(3);
        (await Pool.ApplyAsync(async (int a, int b, int c, int d) => { await Task.Yield(); return a + b + c + d + bonus; }, 1, 2, 3, 4).Task.Within()).Should().Be(11);
        (await Pool.ApplyAsync((int a, int b, int c, int d, CancellationToken ct) => ct.CanBeCanceled ? a + b + c + d : -1, 1, 2, 3, 4).Task.Within()).Should().Be(10);
        (await Task.Run(() => Pool.StarMap((int a, int b, int c, CancellationToken ct) => a + b + c, new[] { (1, 2, 3) })).Within()).Should().Equal(6);
    }

    [Fact(Timeout = 60_000)]
    public async Task In_process_mode_also_sends_targets_through_the_serializer()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { InProcess = true });
        var seen = new List<int> { 1 };
        var scorer = new Scorer([3.0], "in-process");

        (await pool.MapAsync(x => { seen.Add(x); return seen.Count; }, new[] { 5, 6 }).Within()).Should().Equal(2, 3);
        (await pool.MapAsync(scorer.Score, new[] { new[] { 2.0 } }).Within()).Should().Equal(6.0);
        (await pool.MapAsync(async x => { await Task.Yield(); return x + seen.Count; }, new[] { 1 }).Within()).Should().Equal(2);
        seen.Should().Equal(1);

        var log = new MemoryStream();
        Action refused = () => pool.MapAsync(x => x + (int)log.Length, new[] { 1 });
        refused.Should().Throw<ArgumentException>().WithMessage("*`log`*");
    }
}
