using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;
using Pool.Internal;

namespace Pool.Tests.Integration;

/// <summary>
/// A second audit, of what the first (PythonParityTests) did not cover: values whose copy is not the original
/// (the silent kind of failure pickle does not have), framework method groups and bound extension methods,
/// extreme but legal option values, calls racing Dispose and Close, floods of worker output, and what a worker
/// process sees and leaves behind. Cases come from the suites and bug reports of CPython's pool and
/// concurrent.futures, loky, pebble and cloudpickle, adapted to this API. Every test waits with a bound, so a hang
/// shows as a failure. A check written "works, or is refused at the call naming X" accepts either answer.
/// </summary>
public class PythonParityEdgeTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(20);

    private ProcessPool Pool => fixture.Pool;

    // ---------------------------------------------------------------- captured values whose copy must be the original

    /// <summary>
    /// cloudpickle / pickle copy a seeded random.Random with its state. A captured seeded <see cref="Random"/> must give the
    /// worker the same numbers, or be refused at the call; a fresh, unseeded Random in its place is silent data loss.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_captured_seeded_Random_gives_the_worker_the_same_numbers_or_is_refused_naming_it()
    {
        var rng = new Random(42);
        int expected = new Random(42).Next();
        await RunsOrIsRefusedAsync(() => Pool.ApplyAsync(() => rng.Next()).Task, expected, "rng");
    }

    /// <summary>A captured StringBuilder is a buffer of text: its text must arrive, or the call must be refused.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_captured_StringBuilder_keeps_its_text_or_is_refused_naming_it()
    {
        var text = new StringBuilder("header;");
        await RunsOrIsRefusedAsync(() => Pool.ApplyAsync(() => text.ToString()).Task, "header;", "text");
    }

    /// <summary>A captured Lazy whose value was computed here: the worker must see that value, or the call be refused.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_captured_Lazy_keeps_its_value_or_is_refused_naming_it()
    {
        var table = new Lazy<int>(() => 42);
        _ = table.Value;
        await RunsOrIsRefusedAsync(() => Pool.ApplyAsync(() => table.Value + 1).Task, 43, "table");
    }

    /// <summary>A captured Regex (a compiled pattern: pickle copies re.Pattern) must run, or be refused naming it and saying what to do.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_captured_Regex_runs_or_is_refused_naming_it()
    {
        var pattern = new Regex("^a+b$", RegexOptions.CultureInvariant);
        await RunsOrIsRefusedAsync(() => Pool.MapAsync(s => pattern.IsMatch(s), new[] { "aab", "abc" }).ContinueWith(t => string.Join(",", t.Result), TaskScheduler.Default), "True,False", "pattern");
    }

    /// <summary>A captured LINQ query (a lazy IEnumerable over a lambda) travels as its values.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_captured_LINQ_query_travels_as_its_values()
    {
        IEnumerable<int> evens = Enumerable.Range(0, 10).Where(x => x % 2 == 0);
        int[] sums = await Pool.MapAsync(x => evens.Sum() + x, new[] { 0, 1 }).WaitAsync(Short);
        sums.Should().Equal(20, 21);
    }

    /// <summary>The same lambda (one compiled method) called from many threads at once, each call with its own captured value.</summary>
    [Fact(Timeout = 40_000)]
    public async Task The_same_lambda_called_from_many_threads_at_once_keeps_each_calls_own_captured_values()
    {
        Task<int[]>[] calls = [.. Enumerable.Range(1, 12).Select(k => Task.Run(() => Scaled(Pool, k)))];
        int[][] results = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(30));
        for (int k = 1; k <= 12; k++)
        {
            results[k - 1].Should().Equal(Enumerable.Range(0, 200).Select(x => x * k), "call {0} captured {0}", k);
        }

        static Task<int[]> Scaled(ProcessPool pool, int factor) => pool.MapAsync(x => x * factor, Enumerable.Range(0, 200), chunkSize: 7);
    }

    // ---------------------------------------------------------------- function shapes not covered before

    /// <summary>Method groups of framework methods in other assemblies (System.Runtime, System.Net.Primitives, System.Private.Uri).</summary>
    [Fact(Timeout = 30_000)]
    public async Task Method_groups_of_framework_methods_in_other_assemblies_ship()
    {
        (await Pool.MapAsync<double, double>(Math.Sqrt, new[] { 4.0, 9.0 }).WaitAsync(Short)).Should().Equal(2.0, 3.0);
        (await Pool.MapAsync<string, string>(Uri.EscapeDataString, new[] { "a b" }).WaitAsync(Short)).Should().Equal("a%20b");
        (await Pool.MapAsync<string, string?>(System.Net.WebUtility.HtmlEncode, new[] { "<x>" }).WaitAsync(Short)).Should().Equal("&lt;x&gt;");
        (await Pool.MapAsync<string?, string?>(Path.GetExtension, new[] { "a/b.txt" }).WaitAsync(Short)).Should().Equal(".txt");
        (await Pool.MapAsync<string, int>(int.Parse, new[] { "12" }).WaitAsync(Short)).Should().Equal(12);
    }

    /// <summary>
    /// A bound method of a framework object (dill/cloudpickle: a bound builtin method) and an extension method bound to
    /// its first argument (a delegate over a static method with a target): each runs, or is refused at the call.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task Bound_framework_methods_and_extension_methods_bound_to_an_object_ship()
    {
        string prefix = "ab";
        (await Pool.MapAsync<string, bool>(prefix.StartsWith, new[] { "a", "x" }).WaitAsync(Short)).Should().Equal(true, false);

        var known = new HashSet<int> { 1, 3 };
        (await Pool.MapAsync<int, bool>(known.Contains, new[] { 1, 2, 3 }).WaitAsync(Short)).Should().Equal(true, false, true);

        IEnumerable<string> allowed = ["red", "blue"];
        Func<string, bool> isAllowed = allowed.Contains;
        await RunsOrIsRefusedAsync(() => Pool.MapAsync(isAllowed, new[] { "red", "green" }).ContinueWith(t => string.Join(",", t.Result), TaskScheduler.Default), "True,False", "allowed");

        Func<int, string> repeat = "ab".Repeat;
        await RunsOrIsRefusedAsync(() => Pool.MapAsync(repeat, new[] { 2 }).ContinueWith(t => t.Result[0], TaskScheduler.Default), "abab", "ab");
    }

    /// <summary>An instance method of a struct: its state (the boxed copy) goes with it.</summary>
    [Fact(Timeout = 30_000)]
    public async Task An_instance_method_of_a_struct_runs_with_the_structs_state()
    {
        var offset = new ParityEdgeOffset(100);
        (await Pool.MapAsync<int, int>(offset.Add, new[] { 1, 2 }).WaitAsync(Short)).Should().Equal(101, 102);
    }

    /// <summary>
    /// An instance method of a user class deriving from a framework collection: its state lives in the framework's
    /// private fields. It must run with that state, or be refused at the call saying what to do.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task An_instance_method_of_a_class_deriving_from_Dictionary_runs_with_its_entries_or_is_refused()
    {
        var counts = new ParityEdgeCounts { ["a"] = 1, ["b"] = 2 };
        await RunsOrIsRefusedAsync(() => Pool.MapAsync<string, int>(counts.CountOf, new[] { "a", "b", "c" }).ContinueWith(t => string.Join(",", t.Result), TaskScheduler.Default), "1,2,-1", "ParityEdgeCounts");
    }

    /// <summary>
    /// A function returning an IAsyncEnumerable: no value can come back (System.Text.Json cannot read one). The README
    /// promises a type that cannot come back is refused at the call; it must not fail task by task in the workers.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_function_returning_an_IAsyncEnumerable_is_refused_at_the_call()
    {
        Func<Task> map = () => Pool.MapAsync(ParityEdgeFunctions.CountUp, new[] { 2, 3 }).WaitAsync(Short);
        Exception error = (await map.Should().ThrowAsync<Exception>()).Which;
        error.Should().BeOfType<ArgumentException>("a result that cannot come back is refused at the call (README: What is refused), got: {0}", error.Message);
    }

    /// <summary>A function returning a lazy IEnumerable (a yield iterator): its values come back.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_function_returning_a_lazy_iterator_sends_its_values_back()
    {
        IEnumerable<int>[] results = await Pool.MapAsync(ParityEdgeFunctions.Upto, new[] { 3, 0 }).WaitAsync(Short);
        results[0].Should().Equal(0, 1, 2);
        results[1].Should().BeEmpty();
    }

    // ---------------------------------------------------------------- arguments and results

    [Fact(Timeout = 30_000)]
    public async Task Less_common_value_types_round_trip()
    {
        var when = new DateTimeOffset(2024, 2, 29, 13, 14, 15, TimeSpan.FromHours(5.5));
        var values = new ParityEdgeValues(
            Int128.MaxValue - 7, (Half)1.5, new DateOnly(2024, 2, 29), new TimeOnly(23, 59, 58), when, TimeSpan.FromTicks(123456789),
            new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc), 79228162514264337593543950335m, Guid.NewGuid(), DayOfWeek.Sunday | (DayOfWeek)64,
            new Uri("https://example.org/a?b=c"), new Version(1, 2, 3, 4), (1, "two", 3.0, '4', 5L, (byte)6, 7f, "eight"));
        ParityEdgeValues back = await Pool.ApplyAsync(ParityEdgeFunctions.Identity, values).Task.WaitAsync(Short);
        back.Should().Be(values);
        (await Pool.ApplyAsync(ParityEdgeFunctions.KindOf, new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Local)).Task.WaitAsync(Short)).Should().Be(DateTimeKind.Local);
    }

    /// <summary>Nested generics: dictionaries of lists of tuples, jagged arrays, nullable values.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Nested_generic_values_round_trip()
    {
        var nested = new Dictionary<string, List<(int, string?)>> { ["a"] = [(1, "x"), (2, null)], ["b"] = [] };
        Dictionary<string, List<(int, string?)>> back = await Pool.ApplyAsync(ParityEdgeFunctions.Identity, nested).Task.WaitAsync(Short);
        back.Should().BeEquivalentTo(nested);
        int[][] jagged = [[1], [], [2, 3]];
        (await Pool.ApplyAsync(ParityEdgeFunctions.Identity, jagged).Task.WaitAsync(Short)).Should().BeEquivalentTo(jagged, o => o.WithStrictOrdering());
        (await Pool.MapAsync(ParityEdgeFunctions.Identity, new int?[] { 1, null, 3 }).WaitAsync(Short)).Should().Equal(1, null, 3);
    }

    /// <summary>
    /// A linked list 200 nodes deep (pickle copes up to its recursion limit, about 1,000): it ships, or is refused at the
    /// call with a message that names the depth limit (System.Text.Json's default MaxDepth is 64).
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_linked_list_two_hundred_deep_ships_or_is_refused_naming_the_depth_limit()
    {
        Node head = ParityEdgeFunctions.Chain(200);
        try
        {
            int length = await Pool.ApplyAsync(ParityEdgeFunctions.LengthOf, head).Task.WaitAsync(Short);
            length.Should().Be(200);
        }
        catch (ArgumentException e)
        {
            e.Message.Should().Contain("depth", "the object has no cycle; it is deep, and the message must say so. The message was: {0}", e.Message);
        }
    }

    /// <summary>A two-dimensional array (numpy's usual 2-D array): it ships, or is refused at the call, not in a worker.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_two_dimensional_array_argument_ships_or_is_refused_at_the_call()
    {
        var grid = new double[2, 3];
        grid[1, 2] = 5;
        await RunsOrIsRefusedAsync(() => Pool.ApplyAsync(ParityEdgeFunctions.Corner, grid).Task, 5.0, "Double[,]");
    }

    /// <summary>
    /// Apply with an argument that cannot be sent: refused at the call, naming the argument. The message must not talk
    /// of a "first item" (Apply has one argument, not items).
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task Apply_with_an_argument_that_cannot_be_sent_is_refused_naming_the_argument()
    {
        await Task.Yield();
        Node cycle = ParityFunctions.MakeNode(cycle: true);
        ArgumentException error = FluentActions.Invoking(() => Pool.ApplyAsync(ParityEdgeFunctions.LengthOf, cycle)).Should().Throw<ArgumentException>().Which;
        error.ParamName.Should().Be("arg");
        error.Message.Should().Contain("Node").And.NotContain("first item", "Apply has one argument; the message was: {0}", error.Message);
    }

    // ---------------------------------------------------------------- options

    [Fact(Timeout = 30_000)]
    public async Task Invalid_StartTimeout_ProgressInterval_and_WorkerEnvironment_are_refused_at_construction_naming_them()
    {
        await Task.Yield();
        Refused(new ProcessPoolOptions { StartTimeout = TimeSpan.Zero }, "StartTimeout");
        Refused(new ProcessPoolOptions { StartTimeout = TimeSpan.FromSeconds(-3) }, "StartTimeout");
        Refused(new ProcessPoolOptions { ProgressInterval = TimeSpan.FromSeconds(-1) }, "ProgressInterval");
        Refused(new ProcessPoolOptions { MaxConcurrencyPerWorker = 0 }, "MaxConcurrencyPerWorker");
        Refused(new ProcessPoolOptions { MaxTasksPerWorker = -1 }, "MaxTasksPerWorker");
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { WorkerEnvironment = null! }))
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("WorkerEnvironment");

        // A fifth audit: a timer's own message for a start timeout it cannot wait, a NUL in a value accepted (the worker
        // saw it cut), a serializer whose constructor throws found out worker after worker, a bad count ignored in process.
        Refused(new ProcessPoolOptions { StartTimeout = TimeSpan.MaxValue }, "StartTimeout");
        Refused(new ProcessPoolOptions { InProcess = true, Workers = 0 }, "Workers");
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { WorkerEnvironment = new Dictionary<string, string?> { ["X"] = "a\0b" } }))
            .Should().Throw<ArgumentException>().WithMessage("*\"X\" a value with a NUL character*").Which.ParamName.Should().Be("WorkerEnvironment");
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { Launcher = new SlurmLauncher { Partition = "debug\n--wrap=x" } }))
            .Should().Throw<ArgumentException>().WithMessage("*SlurmLauncher.Partition*one word*").Which.ParamName.Should().Be("Partition");
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { Launcher = new SlurmLauncher { Account = " " } }))
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("Account");
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { Serializer = new FailingSerializer() }))
            .Should().Throw<ArgumentException>().WithMessage("*FailingSerializer, whose parameterless constructor threw InvalidOperationException: no codec here*").Which.ParamName.Should().Be("Serializer");

        static void Refused(ProcessPoolOptions options, string name) =>
            FluentActions.Invoking(() => new ProcessPool(options with { WorkerOutput = _ => { } })).Should().Throw<ArgumentOutOfRangeException>(name).Which.ParamName.Should().Be(name);
    }

    private sealed class FailingSerializer : MessagePackPoolSerializer
    {
        public FailingSerializer() => _ = Created++ > 0 ? throw new InvalidOperationException("no codec here") : 0;

        private static int Created { get; set; }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_cancelled_Map_of_nothing_is_cancelled_and_RunAsync_refuses_bad_arguments_at_the_call()
    {
        await Task.Yield();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        FluentActions.Invoking(() => Pool.Map(Functions.Square, Array.Empty<int>(), cancellationToken: cancelled.Token)).Should().Throw<OperationCanceledException>();
        Action run = () => Pool.RunAsync([Call.Of(Functions.Square, 2)], chunkSize: 0);
        run.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("chunkSize");
    }

    /// <summary>A variable name the OS cannot take (empty, or with '='): refused at construction naming WorkerEnvironment, not a worker start failure or a silently different variable.</summary>
    [Theory(Timeout = 30_000)]
    [InlineData("")]
    [InlineData("A=B")]
    public async Task A_WorkerEnvironment_name_the_OS_cannot_take_is_refused_at_construction_naming_the_option(string name)
    {
        Func<Task> start = async () =>
        {
            ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions { WorkerEnvironment = new Dictionary<string, string?> { [name] = "x" } }).WaitAsync(Short);
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        };
        Exception error = (await start.Should().ThrowAsync<Exception>()).Which;
        error.Should().BeAssignableTo<ArgumentException>("got {0}: {1}", error.GetType().Name, error.Message);
        error.Message.Should().Contain("WorkerEnvironment");
    }

    /// <summary>
    /// The README says a custom serializer needs a public parameterless constructor (the workers create the same class).
    /// One without it must be refused at construction naming the option, not end in a worker start failure.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_serializer_without_a_parameterless_constructor_is_refused_at_construction_naming_the_option()
    {
        var options = new ProcessPoolOptions { Serializer = new ParityEdgeSerializer(System.Text.Json.JsonSerializerDefaults.Web) };
        Func<Task> start = () => TestPools.StartAsync(workers: 1, options: options).WaitAsync(Short);
        (await start.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("Serializer").And.Contain("constructor");
    }

    /// <summary>
    /// pebble timeout / CPython get(timeout) OverflowError reports: a very long timeout is a legal value (TaskTimeout
    /// accepts any positive TimeSpan) and must behave as "practically none", not break the pool.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_task_timeout_of_sixty_days_lets_tasks_run()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { TaskTimeout = TimeSpan.FromDays(60) });
        (await pool.MapAsync(Functions.Square, new[] { 1, 2, 3 }).WaitAsync(Short)).Should().Equal(1, 4, 9);
        (await pool.ApplyAsync(Functions.Square, 4, taskTimeout: TimeSpan.MaxValue).Task.WaitAsync(Short)).Should().Be(16);
    }

    /// <summary>
    /// A CancellationGrace of sixty days ("let a cancelled task finish, never kill it": Timeout.InfiniteTimeSpan is refused
    /// as negative) is legal: cancelling a call must still end it, and Cancel() itself must not throw.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_cancellation_grace_of_sixty_days_still_lets_a_call_be_cancelled()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { CancellationGrace = TimeSpan.FromDays(60) });
        using var cts = new CancellationTokenSource();
        Task<int[]> map = pool.MapAsync(Functions.SleepCooperatively, new[] { 10_000, 10_000 }, chunkSize: 1, cancellationToken: cts.Token);
        FluentActions.Invoking(cts.Cancel).Should().NotThrow();
        await FluentActions.Awaiting(() => map.WaitAsync(Short)).Should().ThrowAsync<OperationCanceledException>();
        (await pool.MapAsync(Functions.Square, new[] { 3 }).WaitAsync(Short)).Should().Equal(9);
    }

    /// <summary>CPython: AsyncResult.get(timeout=99999999) raised OverflowError (timeout value is too large). A long wait must just wait.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Get_and_Wait_with_a_timeout_of_a_year_return_the_result()
    {
        // Not ready yet when Get and Wait start waiting (a ready result returns before the timeout is looked at).
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Sleep, 500);
        int value = await Task.Run(() => result.Get(TimeSpan.FromDays(365))).WaitAsync(Short);
        value.Should().Be(500);
        AsyncResult<int> other = Pool.ApplyAsync(Functions.Sleep, 500);
        (await Task.Run(() => other.Wait(TimeSpan.MaxValue)).WaitAsync(Short)).Should().BeTrue();
    }

    /// <summary>loky oversubscription: eight workers on a two-core machine all start and all take work.</summary>
    [Fact(Timeout = 40_000)]
    public async Task Eight_workers_on_a_small_machine_all_start_and_take_work()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 8).WaitAsync(TimeSpan.FromSeconds(30));
        try
        {
            pool.ProcessIds.Should().HaveCount(8).And.OnlyHaveUniqueItems();
            int[] pids = await pool.MapAsync(Functions.ProcessIdAfter, Enumerable.Repeat(200, 16), chunkSize: 1).WaitAsync(Short);
            pids.Distinct().Count().Should().BeGreaterThan(2, "tasks spread over the workers");
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    /// <summary>A Progress handler that throws must not fail or hang the call (tqdm bugs must not lose results).</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_progress_handler_that_throws_does_not_fail_the_call()
    {
        var progress = new ParityEdgeThrowingProgress();
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { Progress = progress, ProgressInterval = TimeSpan.Zero });
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 50), chunkSize: 5).WaitAsync(Short)).Should().Equal(Enumerable.Range(0, 50).Select(x => x * x));
        (await pool.ApplyAsync(Functions.Square, 5).Task.WaitAsync(Short)).Should().Be(25);
        progress.Calls.Should().BeGreaterThan(0);
    }

    /// <summary>MaxTasksPerWorker with async tasks run several at once per worker: every task still runs once and in order.</summary>
    [Fact(Timeout = 30_000)]
    public async Task MaxTasksPerWorker_with_several_async_tasks_per_worker_runs_every_task()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { MaxTasksPerWorker = 3, MaxConcurrencyPerWorker = 4 });
        (int Value, int Pid)[] results = await pool.MapAsync(ParityEdgeFunctions.DelayedWithPid, Enumerable.Range(0, 24), chunkSize: 5).WaitAsync(Short);
        results.Select(r => r.Value).Should().Equal(Enumerable.Range(0, 24));
        results.GroupBy(r => r.Pid).Should().OnlyContain(g => g.Count() <= 3);
    }

    // ---------------------------------------------------------------- concurrency and lifecycle

    /// <summary>
    /// concurrent.futures test_shutdown_race / loky: Dispose from another thread while eight threads loop over Map, Imap,
    /// ApplyAsync and StarMap. Every call ends, with a result or a clear error; none hangs; no process is left.
    /// </summary>
    [Fact(Timeout = 40_000)]
    public async Task Dispose_while_many_threads_submit_ends_every_call_with_a_result_or_a_clear_error()
    {
        ProcessPool pool = await TestPools.StartAsync();
        var unexpected = new ConcurrentQueue<Exception>();
        int completed = 0;
        var firstCompleted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var started = new CountdownEvent(8);
        Task[] loops = [.. Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            started.Signal();
            while (true)
            {
                try
                {
                    switch (t % 4)
                    {
                        case 0:
                            (await pool.MapAsync(Functions.Increment, Enumerable.Range(0, 500), chunkSize: 10)).Should().HaveCount(500);
                            break;
                        case 1:
                            (await pool.ImapAsync(Functions.Increment, Enumerable.Range(0, 200), chunkSize: 3).CountAsync()).Should().Be(200);
                            break;
                        case 2:
                            (await pool.ApplyAsync(x => x + t, 1).Task).Should().Be(1 + t);
                            break;
                        default:
                            (await pool.StarMapAsync(Functions.Concat, new[] { ("a", 1), ("b", 2) })).Should().Equal("a1", "b2");
                            break;
                    }

                    Interlocked.Increment(ref completed);
                    firstCompleted.TrySetResult();
                }
                catch (Exception e) when (e is PoolTerminatedException || (e is InvalidOperationException && e.Message.Contains("terminated", StringComparison.Ordinal)))
                {
                    return;
                }
                catch (Exception e)
                {
                    unexpected.Enqueue(e);
                    return;
                }
            }
        }))];
        started.Wait(Short).Should().BeTrue();
        await firstCompleted.Task.WaitAsync(Short);
        await Task.Run(pool.Dispose).WaitAsync(Short);
        await Task.WhenAll(loops).WaitAsync(Short);
        unexpected.Should().BeEmpty();
        completed.Should().BeGreaterThan(0);
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>
    /// Close while other threads keep calling ApplyAsync: each call either completes with its value or is refused at the
    /// call with InvalidOperationException naming the state; Join then ends.
    /// </summary>
    [Fact(Timeout = 40_000)]
    public async Task Close_while_other_threads_call_ApplyAsync_completes_or_refuses_each_call_and_join_ends()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            var accepted = new ConcurrentBag<(int Input, AsyncResult<int> Result)>();
            var refusals = new ConcurrentBag<Exception>();
            using var go = new ManualResetEventSlim();
            Task[] submitters = [.. Enumerable.Range(0, 4).Select(t => Task.Run(() =>
            {
                go.Wait();
                for (int i = 0; i < 100_000; i++)
                {
                    int input = (t * 1000) + i;
                    try
                    {
                        accepted.Add((input, pool.ApplyAsync(Functions.Square, input)));
                    }
                    catch (InvalidOperationException e)
                    {
                        refusals.Add(e);
                        return;
                    }
                }
            }))];
            go.Set();
            SpinWait.SpinUntil(() => accepted.Count >= 200, Short).Should().BeTrue();
            pool.Close();
            await Task.WhenAll(submitters).WaitAsync(Short);
            foreach ((int input, AsyncResult<int> result) in accepted)
            {
                (await result.Task.WaitAsync(Short)).Should().Be(input * input);
            }

            refusals.Should().NotBeEmpty("submitters ran into the Close").And.OnlyContain(e => e.Message.Contains("closed", StringComparison.Ordinal));
            await pool.JoinAsync().WaitAsync(Short);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    /// <summary>Close, Terminate, Dispose, DisposeAsync and Join from several threads at once during a map: all return.</summary>
    [Fact(Timeout = 40_000)]
    public async Task Close_terminate_dispose_and_join_racing_on_several_threads_all_return()
    {
        ProcessPool pool = await TestPools.StartAsync();
        Task<int[]> map = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(50, 100), chunkSize: 1);
        using var go = new ManualResetEventSlim();
        Task[] racers =
        [
            Task.Run(() => { go.Wait(); pool.Close(); }),
            Task.Run(() => { go.Wait(); pool.Terminate(); }),
            Task.Run(() => { go.Wait(); pool.Dispose(); }),
            Task.Run(async () => { go.Wait(); await pool.DisposeAsync(); }),
            Task.Run(() => { go.Wait(); pool.Close(); pool.Join(); }),
        ];
        go.Set();
        await Task.WhenAll(racers).WaitAsync(Short);
        await FluentActions.Awaiting(() => map.WaitAsync(Short)).Should().ThrowAsync<PoolTerminatedException>();
        pool.Join();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>
    /// An ImapAsync whose input source waits forever (a queue nobody fills) while its reader awaits the next result:
    /// Dispose must end the enumeration with PoolTerminatedException, not leave the reader waiting.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task Dispose_ends_an_ImapAsync_whose_input_waits_forever()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        IAsyncEnumerator<int> results = pool.ImapAsync(Functions.Square, ParityEdgeFunctions.OneThenNever()).GetAsyncEnumerator();
        (await results.MoveNextAsync().AsTask().WaitAsync(Short)).Should().BeTrue();
        results.Current.Should().Be(49);
        Task<bool> next = results.MoveNextAsync().AsTask();
        await pool.DisposeAsync().AsTask().WaitAsync(Short);
        await FluentActions.Awaiting(() => next.WaitAsync(TimeSpan.FromSeconds(10))).Should().ThrowAsync<PoolTerminatedException>();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>`using` and `await using` on the same pool (both leave it): the second dispose is harmless.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Using_and_await_using_on_the_same_pool_dispose_it_once_harmlessly()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        await using (pool)
        {
            using (pool)
            {
                (await pool.MapAsync(Functions.Square, new[] { 2 }).WaitAsync(Short)).Should().Equal(4);
            }
        }

        TestPools.AssertGone(pool.StartedProcessIds);
        pool.Invoking(p => p.Apply(Functions.Square, 1)).Should().Throw<InvalidOperationException>().WithMessage("*terminated*");
    }

    /// <summary>JoinAsync with a token that is cancelled ends the wait (not the pool), and a later Join still ends.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_cancelled_JoinAsync_stops_waiting_and_a_later_join_still_ends()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        AsyncResult<int> slow = pool.ApplyAsync(Functions.Sleep, 1_500);
        pool.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await FluentActions.Awaiting(() => pool.JoinAsync(cts.Token)).Should().ThrowAsync<OperationCanceledException>();
        (await slow.Task.WaitAsync(Short)).Should().Be(1_500);
        await pool.JoinAsync().WaitAsync(Short);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>CPython (terminate from a callback deadlocked): here Dispose from the WorkerOutput handler, which runs on the output pump.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Dispose_from_the_worker_output_handler_does_not_deadlock()
    {
        ProcessPool? pool = null;
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var poolReady = new TaskCompletionSource<ProcessPool>(TaskCreationOptions.RunContinuationsAsynchronously);
        pool = await TestPools.StartAsync(options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                if (line.Text.StartsWith("sleeping", StringComparison.Ordinal))
                {
                    poolReady.Task.Result.Dispose();
                    disposed.TrySetResult();
                }
            },
        });
        poolReady.SetResult(pool);
        AsyncResult<int> running = pool.ApplyAsync(Functions.AnnounceAndSleep, 20_000);
        await disposed.Task.WaitAsync(TimeSpan.FromSeconds(15));
        running.Invoking(r => r.Get(Short)).Should().Throw<PoolTerminatedException>();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    // ---------------------------------------------------------------- worker output

    /// <summary>
    /// CPython/pebble: a child writing a lot to a pipe nobody reads deadlocks. A task writing 4 MiB of lines to stdout,
    /// 4 MiB to stderr and one 2 MiB line without a newline must finish, and the pool go on.
    /// </summary>
    [Fact(Timeout = 40_000)]
    public async Task A_task_writing_megabytes_to_stdout_and_stderr_does_not_stall_the_pool()
    {
        long chars = 0;
        long lines = 0;
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                Interlocked.Add(ref chars, line.Text.Length);
                Interlocked.Increment(ref lines);
            },
        });
        int[] done = await pool.MapAsync(ParityEdgeFunctions.Flood, new[] { 4, 4 }, chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(30));
        done.Should().Equal(4, 4);
        (await pool.MapAsync(Functions.Square, new[] { 3 }).WaitAsync(Short)).Should().Equal(9);
        lines.Should().BeGreaterThan(1000);
    }

    // ---------------------------------------------------------------- process hygiene

    /// <summary>pebble #72 (processes pile up), README "Terminate kills whole process trees": a child a task leaves running dies with Dispose.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_child_process_a_task_leaves_running_is_gone_after_dispose()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        int child = await pool.ApplyAsync(ParityEdgeFunctions.StartDetachedSleep, 60).Task.WaitAsync(Short);
        ProcessTree.IsAlive(child).Should().BeTrue();
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        await WaitGoneAsync(child);
        TestPools.AssertGone([child]);
    }

    /// <summary>MaxTasksPerWorker churn, then Terminate in the middle of a map: every process the pool ever started is gone.</summary>
    [Fact(Timeout = 40_000)]
    public async Task After_worker_churn_and_terminate_mid_map_no_process_is_left()
    {
        ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { MaxTasksPerWorker = 2 });
        (await pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, 12), chunkSize: 1).WaitAsync(Short)).Should().HaveCount(12);
        Task<int[]> running = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(100, 40), chunkSize: 1);
        pool.Terminate();
        await FluentActions.Awaiting(() => running.WaitAsync(Short)).Should().ThrowAsync<PoolTerminatedException>();
        await pool.JoinAsync().WaitAsync(Short);
        pool.StartedProcessIds.Count.Should().BeGreaterThan(2);
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>
    /// What a worker sees: the host's working directory and base directory, the host's environment (plus WorkerEnvironment,
    /// where null removes a variable), and a stdin at end of file (CPython gives its children /dev/null), so input() does not hang.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_worker_sees_the_hosts_directory_and_environment_and_an_empty_stdin()
    {
        string name = "AUDIT2_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(name + "_KEEP", "kept");
        Environment.SetEnvironmentVariable(name + "_DROP", "dropped");
        try
        {
            await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions
            {
                WorkerEnvironment = new Dictionary<string, string?> { [name + "_DROP"] = null, [name + "_SET"] = "set" },
            });
            string[] seen = await pool.ApplyAsync(ParityEdgeFunctions.WhatIsSeen, name).Task.WaitAsync(Short);
            seen[0].Should().Be(Environment.CurrentDirectory, "working directory");
            seen[1].Should().Be(AppContext.BaseDirectory, "base directory");
            seen[2].Should().Be("kept|<null>|set", "environment");
            seen[3].Should().Be("<eof>", "stdin");
        }
        finally
        {
            Environment.SetEnvironmentVariable(name + "_KEEP", null);
            Environment.SetEnvironmentVariable(name + "_DROP", null);
        }
    }

    /// <summary>Static fields are the worker's own (README): a change in one task is seen by later tasks on that worker, never by the host.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Static_fields_are_the_workers_own_and_a_change_stays_in_that_worker()
    {
        ParityEdgeFunctions.Counter = 1000;
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        int[] counts = await pool.MapAsync(ParityEdgeFunctions.BumpCounter, new[] { 0, 0, 0 }, chunkSize: 1).WaitAsync(Short);
        counts.Should().Equal(1, 2, 3);
        ParityEdgeFunctions.Counter.Should().Be(1000);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Either the call returns <paramref name="expected"/>, or it is refused at the call with an ArgumentException naming <paramref name="culprit"/>.</summary>
    private static async Task RunsOrIsRefusedAsync<T>(Func<Task<T>> call, T expected, string culprit)
    {
        Task<T> pending;
        try
        {
            pending = call();
        }
        catch (ArgumentException refused)
        {
            refused.Message.Should().Contain(culprit, "a refusal names what cannot ship");
            return;
        }

        T value;
        try
        {
            value = await pending.WaitAsync(Short);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            Exception inner = e is AggregateException { InnerException: { } first } ? first : e;
            throw new Xunit.Sdk.XunitException($"Expected {expected} or a refusal at the call naming `{culprit}`; the call was accepted and then failed with {inner.GetType().Name}: {inner.Message}");
        }

        value.Should().Be(expected, "the worker must see what this process holds, or the call must be refused naming `{0}`", culprit);
    }

    /// <summary>
    /// Waits, at most 3 s, for a process that is not our child to be gone after its tree was killed: .NET offers no
    /// exit event for a process it did not start (no pidfd), so this looks every 50 ms.
    /// </summary>
    private static async Task WaitGoneAsync(int processId)
    {
        var clock = Stopwatch.StartNew();
        while (ProcessTree.IsAlive(processId) && clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            await Task.Delay(50);
        }
    }
}

public readonly struct ParityEdgeOffset(int by)
{
    private readonly int _by = by;

    public int Add(int x) => x + _by;
}

public sealed class ParityEdgeCounts : Dictionary<string, int>
{
    public int CountOf(string key) => TryGetValue(key, out int count) ? count : -1;
}

public class ParityEdgeAnimal
{
    public string Name { get; set; } = string.Empty;

    public virtual string Sound() => "...";
}

public sealed class ParityEdgeDog : ParityEdgeAnimal
{
    public int Tricks { get; set; }

    public override string Sound() => $"woof {Tricks}";
}

public sealed class ParityEdgeAccount
{
    private decimal _balance;

    public decimal Balance => _balance;

    public void Deposit(decimal amount) => _balance += amount;
}

public sealed record ParityEdgeValues(
    Int128 Big, Half Small, DateOnly Day, TimeOnly Time, DateTimeOffset When, TimeSpan Span, DateTime Utc, decimal Money, Guid Id, DayOfWeek Flags,
    Uri Link, Version Build, (int, string, double, char, long, byte, float, string) Eight);

/// <summary>A custom serializer with only a constructor that takes arguments: the workers cannot create it.</summary>
public sealed class ParityEdgeSerializer(System.Text.Json.JsonSerializerDefaults defaults) : JsonPoolSerializer(new System.Text.Json.JsonSerializerOptions(defaults) { IncludeFields = true });

public sealed class ParityEdgeThrowingProgress : IProgress<PoolProgress>
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public void Report(PoolProgress value)
    {
        Interlocked.Increment(ref _calls);
        throw new InvalidOperationException("the progress bar broke");
    }
}

public static class ParityEdgeExtensions
{
    public static string Repeat(this string text, int times) => string.Concat(Enumerable.Repeat(text, times));
}

public static class ParityEdgeFunctions
{
    private static int _counter;

    public static int Counter { get => _counter; set => _counter = value; }

    public static int BumpCounter(int _) => Counter == 1000 ? -1 : ++Counter;

    public static async IAsyncEnumerable<int> CountUp(int count)
    {
        for (int i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    public static async IAsyncEnumerable<int> OneThenNever([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        yield return 7;
        await Task.Delay(Timeout.Infinite, cancellationToken);
        yield return 8;
    }

    public static IEnumerable<int> Upto(int count)
    {
        for (int i = 0; i < count; i++)
        {
            yield return i;
        }
    }

    public static string JoinStack(Stack<int> stack) => string.Join(",", stack);

    public static string Describe(ParityEdgeAnimal animal) => $"{animal.GetType().Name} {animal.Name} {animal.Sound()}";

    public static decimal BalanceOf(ParityEdgeAccount account) => account.Balance;

    public static Complex Conjugate(Complex z) => Complex.Conjugate(z);

    public static BigInteger PlusOne(BigInteger x) => x + 1;

    public static T Identity<T>(T value) => value;

    public static DateTimeKind KindOf(DateTime value) => value.Kind;

    public static Node Chain(int length)
    {
        var head = new Node { Id = 0 };
        Node last = head;
        for (int i = 1; i < length; i++)
        {
            last.Next = new Node { Id = i };
            last = last.Next;
        }

        return head;
    }

    public static int LengthOf(Node node)
    {
        int length = 0;
        for (Node? n = node; n is not null; n = n.Next)
        {
            length++;
        }

        return length;
    }

    public static double Corner(double[,] grid) => grid[grid.GetLength(0) - 1, grid.GetLength(1) - 1];

    public static async Task<(int, int)> DelayedWithPid(int x)
    {
        await Task.Delay(5);
        return (x, Environment.ProcessId);
    }

    /// <summary>Writes <paramref name="megabytes"/> MiB of lines to stdout and to stderr, and a 2 MiB line without a newline.</summary>
    public static int Flood(int megabytes)
    {
        string line = new('o', 1023);
        for (int i = 0; i < megabytes * 1024; i++)
        {
            Console.Out.WriteLine(line);
            Console.Error.WriteLine(line);
        }

        Console.Out.Write(new string('x', 2 << 20));
        Console.Out.Flush();
        Console.Error.Flush();
        return megabytes;
    }

    /// <summary>Starts `sleep` and returns its pid without waiting: a child that outlives the task.</summary>
    public static int StartDetachedSleep(int seconds)
    {
        using var child = Process.Start("sleep", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return child.Id;
    }

    public static string[] WhatIsSeen(string name)
    {
        string stdin;
        var read = Task.Run(Console.In.ReadLine);
        stdin = read.Wait(TimeSpan.FromSeconds(3)) ? read.Result ?? "<eof>" : "<blocked>";
        return
        [
            Environment.CurrentDirectory,
            AppContext.BaseDirectory,
            string.Join("|", new[] { "_KEEP", "_DROP", "_SET" }.Select(suffix => Environment.GetEnvironmentVariable(name + suffix) ?? "<null>")),
            stdin,
        ];
    }
}
