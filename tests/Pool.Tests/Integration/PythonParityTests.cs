using System.Diagnostics;
using CliWrap.Buffered;

namespace Pool.Tests.Integration;

/// <summary>
/// Cases taken from the test suites of CPython's multiprocessing.Pool and concurrent.futures, loky and pebble, and
/// from their users' bug reports, adapted to this API. Written as an audit: the nine that failed when it was written
/// (an Imap whose input throws, an initializer that exits, exceptions that cannot be described, a value after its
/// timeout, negative waits) are the fixes of the same commit. Each waits with a bound, so a hang shows as a failure.
/// </summary>
public class PythonParityTests(ParityPoolFixture fixture) : IClassFixture<ParityPoolFixture>
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(20);

    private ProcessPool Pool => fixture.Pool;

    // ---------------------------------------------------------------- empty input, argument checks

    /// <summary>CPython test_empty_iterable, pebble test_process_pool_map_empty.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Every_map_shape_over_an_empty_input_returns_nothing()
    {
        int[] none = [];
        (await Pool.MapAsync(Functions.Square, none).WaitAsync(Short)).Should().BeEmpty();
        (await Pool.MapAsync(Functions.Square, Enumerable.Empty<int>(), chunkSize: 1).WaitAsync(Short)).Should().BeEmpty();
        (await Pool.MapOutcomesAsync(Functions.Square, none).WaitAsync(Short)).Should().BeEmpty();
        (await Pool.StarMapAsync(Functions.Concat, Array.Empty<(string, int)>()).WaitAsync(Short)).Should().BeEmpty();
        (await Pool.MapAsync(Functions.Concat, Array.Empty<string>(), new[] { 1, 2 }).WaitAsync(Short)).Should().BeEmpty();
        (await Pool.ImapAsync(Functions.Square, none).ToArrayAsync().AsTask().WaitAsync(Short)).Should().BeEmpty();
        (await Pool.ImapAsync(Functions.Square, none, chunkSize: 3).ToArrayAsync().AsTask().WaitAsync(Short)).Should().BeEmpty();
        (await Pool.ImapUnorderedAsync(Functions.Square, none).ToArrayAsync().AsTask().WaitAsync(Short)).Should().BeEmpty();
        (await Pool.ImapOutcomesAsync(Functions.Square, Empty()).ToArrayAsync().AsTask().WaitAsync(Short)).Should().BeEmpty();
        (await Task.Run(() => Pool.Imap(Functions.Square, none).ToArray()).WaitAsync(Short)).Should().BeEmpty();
        (await Task.Run(() => Pool.ImapUnordered(Functions.Square, none).ToArray()).WaitAsync(Short)).Should().BeEmpty();
    }

    /// <summary>CPython test_imap (chunksize &lt; 1 is ValueError), concurrent.futures test_map_chunksize, pebble zero chunk.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_chunk_size_of_zero_or_below_is_an_argument_error_at_the_call_for_every_shape()
    {
        await Task.Yield();
        var calls = new (string Name, Action Call)[]
        {
            ("Map 0", () => Pool.Map(Functions.Square, new[] { 1 }, chunkSize: 0)),
            ("Map -1", () => Pool.Map(Functions.Square, new[] { 1 }, chunkSize: -1)),
            ("MapAsync -3", () => Pool.MapAsync(Functions.Square, new[] { 1 }, chunkSize: -3)),
            ("MapOutcomes 0", () => Pool.MapOutcomes(Functions.Square, new[] { 1 }, chunkSize: 0)),
            ("StarMap 0", () => Pool.StarMap(Functions.Concat, new[] { ("a", 1) }, chunkSize: 0)),
            ("Imap 0", () => Pool.Imap(Functions.Square, new[] { 1 }, chunkSize: 0)),
            ("ImapAsync -1", () => Pool.ImapAsync(Functions.Square, new[] { 1 }, chunkSize: -1)),
            ("ImapUnordered -5", () => Pool.ImapUnordered(Functions.Square, new[] { 1 }, chunkSize: -5)),
            ("ImapOutcomes 0", () => Pool.ImapOutcomes(Functions.Square, new[] { 1 }, chunkSize: 0)),
        };
        foreach ((string name, Action call) in calls)
        {
            call.Should().Throw<ArgumentOutOfRangeException>(name).Which.ParamName.Should().Be("chunkSize", name);
        }

        (await Pool.MapAsync(Functions.Square, new[] { 3 }).WaitAsync(Short)).Should().Equal(9);
    }

    /// <summary>CPython test_make_pool (Pool(0), Pool(-1) raise ValueError); concurrent.futures test_max_workers_negative.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_worker_count_of_zero_or_past_minus_the_core_count_is_refused()
    {
        await Task.Yield();
        FluentActions.Invoking(() => new ProcessPool(0)).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Workers");
        FluentActions.Invoking(() => new ProcessPool(-Environment.ProcessorCount - 1)).Should().Throw<ArgumentOutOfRangeException>();
        await FluentActions.Awaiting(() => ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 0 })).Should().ThrowAsync<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => new ProcessPool(new ProcessPoolOptions { MaxTasksPerWorker = 0 })).Should().Throw<ArgumentOutOfRangeException>();
    }

    // ---------------------------------------------------------------- an input that throws

    /// <summary>CPython test_map_handle_iterable_exception: map over a generator that raises raises that error.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Map_over_an_input_that_throws_raises_the_inputs_error()
    {
        Func<Task> map = () => Pool.MapAsync(Functions.Square, ThrowsAfter(3));
        await map.Should().ThrowAsync<FormatException>().WithMessage("input broke");
        Func<Task> starMap = () => Pool.StarMapAsync(Functions.Concat, ThrowsAfter(3).Select(i => ("a", i)), chunkSize: 2);
        await starMap.Should().ThrowAsync<FormatException>();
        (await Pool.MapAsync(Functions.Square, new[] { 2 }).WaitAsync(Short)).Should().Equal(new[] { 4 }, "the pool is still usable");
    }

    /// <summary>
    /// CPython test_imap_handle_iterable_exception (chunksize 1 and 2): the results before the error arrive, then the
    /// error, then the iterator ends (CPython sets the length after the failed item: the next <c>next()</c> raises StopIteration).
    /// </summary>
    [Theory(Timeout = 30_000)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Imap_over_an_input_that_throws_yields_the_earlier_results_then_the_error_then_ends(int chunkSize)
    {
        IAsyncEnumerator<int> results = Pool.ImapAsync(Functions.Square, ThrowsAfter(3), chunkSize).GetAsyncEnumerator();
        var seen = new List<object>();
        for (int step = 0; step < 6; step++)
        {
            try
            {
                if (!await results.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)))
                {
                    seen.Add("end");
                    break;
                }

                seen.Add(results.Current);
            }
            catch (FormatException e)
            {
                seen.Add(e.Message);
            }
            catch (TimeoutException)
            {
                seen.Add("hang");
                break;
            }
        }

        await results.DisposeAsync();
        seen.Should().Equal(0, 1, 4, "input broke", "end");
    }

    /// <summary>As above, with ImapOutcomes: the input's error is one outcome, and then the sequence ends.</summary>
    [Fact(Timeout = 30_000)]
    public async Task ImapOutcomes_over_an_input_that_throws_yields_the_error_as_an_outcome_and_ends()
    {
        Outcome<int>[] outcomes = await Pool.ImapOutcomesAsync(Functions.Square, ToAsync(ThrowsAfter(3)), chunkSize: 2)
            .ToArrayAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        outcomes.Select(o => o.Succeeded).Should().Equal(true, true, true, false);
        outcomes[3].Exception.Should().BeOfType<FormatException>();
    }

    /// <summary>CPython test_imap_unordered_handle_iterable_exception.</summary>
    [Fact(Timeout = 30_000)]
    public async Task ImapUnordered_over_an_input_that_throws_yields_the_earlier_results_then_the_error()
    {
        var values = new List<int>();
        Func<Task> enumerate = async () =>
        {
            await foreach ((long _, int value) in Pool.ImapUnorderedAsync(Functions.Square, ThrowsAfter(10), chunkSize: 3))
            {
                values.Add(value);
            }
        };

        await enumerate.Should().ThrowAsync<FormatException>().WaitAsync(Short);
        values.Should().BeEquivalentTo(Enumerable.Range(0, 10).Select(x => x * x));
    }

    [Fact(Timeout = 30_000)]
    public async Task Imap_over_an_input_that_throws_at_once_raises_before_any_result()
    {
        Func<Task> enumerate = async () =>
        {
            await foreach (int _ in Pool.ImapAsync(Functions.Square, ThrowsAfter(0)))
            {
            }
        };

        await enumerate.Should().ThrowAsync<FormatException>().WaitAsync(Short);
    }

    // ---------------------------------------------------------------- failing tasks

    /// <summary>CPython test_map with exceptions, test_traceback: the type, message, index and remote stack travel.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_function_raising_on_one_item_in_map_surfaces_its_type_message_index_and_stack()
    {
        Func<Task> map = () => Pool.MapAsync(Functions.FailOnSeven, Enumerable.Range(0, 20), chunkSize: 4);
        ArgumentException error = (await map.Should().ThrowAsync<ArgumentException>()).Which;
        error.Message.Should().Contain("seven is not allowed (got 7)");
        error.StackTrace.Should().Contain(nameof(Functions.FailOnSeven));
    }

    [Fact(Timeout = 30_000)]
    public async Task An_exception_of_a_custom_type_with_extra_state_arrives_as_its_own_type_with_its_state()
    {
        Func<Task> apply = () => Pool.ApplyAsync(ParityFunctions.ThrowCustom, 5).Task;
        ParityException error = (await apply.Should().ThrowAsync<ParityException>()).Which;
        error.Message.Should().Be("custom failure 5");
        error.Code.Should().Be(5);
    }

    /// <summary>pebble test_process_pool_map_chunksize with an error: with chunks of 3 every other item still has its value.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Imap_with_chunks_of_several_tasks_and_a_failing_task_yields_every_other_result()
    {
        IAsyncEnumerator<int> results = Pool.ImapAsync(Functions.FailOnSeven, Enumerable.Range(0, 12), chunkSize: 3).GetAsyncEnumerator();
        var seen = new List<object>();
        while (true)
        {
            try
            {
                if (!await results.MoveNextAsync().AsTask().WaitAsync(Short))
                {
                    break;
                }

                seen.Add(results.Current);
            }
            catch (ArgumentException)
            {
                seen.Add($"error {seen.Count}");
            }
        }

        await results.DisposeAsync();
        seen.Should().Equal(0, 1, 2, 3, 4, 5, 6, "error 7", 8, 9, 10, 11);
        Outcome<int>[] outcomes = [.. await Task.Run(() => Pool.ImapOutcomes(Functions.FailOnSeven, Enumerable.Range(0, 12), chunkSize: 3).ToArray()).WaitAsync(Short)];
        outcomes.Where(o => !o.Succeeded).Select(o => o.Index).Should().Equal(7);
    }

    /// <summary>CPython test_map_no_failfast (bpo-23992): a 1 MiB exception message must not deadlock close/join.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_megabyte_exception_message_fails_the_map_and_close_and_join_still_end()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            Func<Task> map = () => pool.MapAsync(ParityFunctions.RaiseLargeError, new[] { 0, 1 }).WaitAsync(Short);
            Exception error = (await map.Should().ThrowAsync<Exception>()).Which;
            error.Message.Length.Should().BeGreaterThanOrEqualTo(1 << 20);
            pool.Close();
            await pool.JoinAsync().WaitAsync(Short);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    /// <summary>
    /// CPython bpo-9400 / concurrent.futures ExecutorDeadlockTest ("error during pickling of the exception"): an exception the
    /// worker cannot describe must fail only its own task, as an error of the task, and not break anything.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task An_exception_whose_message_getter_throws_fails_only_its_task()
    {
        Outcome<string>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.ThrowBadMessage, new[] { 0, 1, 2 }, chunkSize: 3).WaitAsync(Short);
        string seen = string.Join(" | ", outcomes.Select(o => o.Succeeded ? $"value {o.Value}" : $"{o.Exception!.GetType().Name}: {o.Exception.Message}"));
        outcomes.Select(o => o.Succeeded).Should().Equal(new[] { true, false, true }, "outcomes were: {0}", seen);
        outcomes[0].Value.Should().Be("0");
        outcomes[2].Value.Should().Be("2");
        outcomes[1].Exception.Should().BeOfType<RemoteException>("the function threw; its worker did not die");
    }

    /// <summary>An exception whose Message is null (an override that returns null) must travel too.</summary>
    [Fact(Timeout = 30_000)]
    public async Task An_exception_whose_message_is_null_fails_only_its_task_as_a_remote_exception()
    {
        int[] pids = [.. Pool.ProcessIds];
        Outcome<string>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.ThrowNullMessage, new[] { 0, 1, 2 }, chunkSize: 3).WaitAsync(Short);
        outcomes[0].Value.Should().Be("0");
        outcomes[2].Value.Should().Be("2");
        outcomes[1].Exception.Should().BeOfType<RemoteException>();
        ((RemoteException)outcomes[1].Exception!).RemoteType.Should().Be(typeof(NullMessageException).FullName);
        Pool.ProcessIds.Should().BeEquivalentTo(pids, "no worker is lost over an odd exception");
    }

    /// <summary>
    /// An AggregateException of many inner exceptions (a Parallel.ForEach inside a task, with 2,000 failing items) is an
    /// ordinary failure of the task: it must arrive as a RemoteException and cost no worker.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task An_aggregate_exception_with_thousands_of_inner_exceptions_is_an_ordinary_task_failure()
    {
        int[] pids = [.. Pool.ProcessIds];
        Func<Task> apply = () => Pool.ApplyAsync(ParityFunctions.ThrowAggregate, 2000).Task.WaitAsync(Short);
        RemoteException error = (await apply.Should().ThrowAsync<RemoteException>()).Which;
        error.RemoteType.Should().Be("System.AggregateException");
        error.InnerExceptions.Should().NotBeEmpty();
        (await Pool.MapAsync(Functions.Square, new[] { 5 }).WaitAsync(Short)).Should().Equal(25);
        Pool.ProcessIds.Should().BeEquivalentTo(pids, "an exception is not a crash");
    }

    /// <summary>
    /// A function that throws OperationCanceledException (or TaskCanceledException, as an HTTP timeout does) on its own,
    /// with no cancellation asked for, failed: concurrent.futures users see the exception, not a cancelled future.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_task_that_throws_operation_cancelled_on_its_own_is_a_failure_not_a_cancellation()
    {
        AsyncResult<int> result = Pool.ApplyAsync(ParityFunctions.ThrowCanceled, 1);
        result.Wait(Short).Should().BeTrue();
        result.Successful.Should().BeFalse();
        result.Task.IsCanceled.Should().BeFalse("nobody cancelled the call");
        result.Invoking(r => r.Get()).Should().Throw<OperationCanceledException>();

        Task<int[]> map = Pool.MapAsync(ParityFunctions.ThrowTaskCanceledAsync, new[] { 1, 2 });
        Func<Task> awaitMap = () => map;
        await awaitMap.Should().ThrowAsync<TaskCanceledException>();
        map.IsFaulted.Should().BeTrue("the task failed; nobody cancelled the call");
    }

    // ---------------------------------------------------------------- values the serializer cannot carry

    /// <summary>
    /// CPython test_unpickleable_result (20 times, with an error callback; the pool must not lose workers);
    /// pebble test_process_pool_pickling_error_result.
    /// </summary>
    [Fact(Timeout = 30_000)]
    public async Task A_result_the_worker_cannot_serialize_fails_its_task_clearly_every_time_and_costs_no_worker()
    {
        int[] pids = [.. Pool.ProcessIds];
        for (int i = 0; i < 20; i++)
        {
            Exception? seen = null;
            AsyncResult<Trap> result = Pool.ApplyAsync(ParityFunctions.MakeTrap, "throw-encode", errorCallback: e => seen = e);
            result.Invoking(r => r.Get(Short)).Should().Throw<InvalidOperationException>().WithMessage("*could not encode*");
            seen.Should().BeOfType<InvalidOperationException>();
        }

        Pool.ProcessIds.Should().BeEquivalentTo(pids);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_result_the_worker_encodes_but_cannot_read_back_fails_saying_it_could_not_be_decoded()
    {
        await Task.Yield();
        AsyncResult<Trap> result = Pool.ApplyAsync(ParityFunctions.MakeTrap, "throw-decode");
        result.Invoking(r => r.Get(Short)).Should().Throw<InvalidOperationException>()
            .WithMessage("*encoded but could not decode*cannot decode this trap*")
            .Which.Message.Should().NotContain("could not encode");
    }

    [Fact(Timeout = 30_000)]
    public async Task A_result_that_refers_to_itself_fails_its_task_and_the_others_arrive()
    {
        Outcome<Node>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.MakeNode, new[] { false, true, false }, chunkSize: 3).WaitAsync(Short);
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        outcomes[1].Exception.Should().BeOfType<InvalidOperationException>();
    }

    /// <summary>concurrent.futures ExecutorDeadlockTest "error during unpickling of the task" (in the worker).</summary>
    [Fact(Timeout = 30_000)]
    public async Task An_argument_that_fails_to_decode_in_the_worker_fails_only_its_task()
    {
        Trap[] items = [new() { Mode = "ok", Value = 1 }, new() { Mode = "throw-decode", Value = 2 }, new() { Mode = "ok", Value = 3 }];
        Outcome<int>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.TrapValue, items, chunkSize: 3).WaitAsync(Short);
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        outcomes[0].Value.Should().Be(1);
        outcomes[2].Value.Should().Be(3);
    }

    /// <summary>concurrent.futures ExecutorDeadlockTest "exit during unpickling of the task": no hang, that task fails, the others run.</summary>
    [Fact(Timeout = 40_000)]
    public async Task An_argument_whose_decoding_kills_the_worker_fails_only_its_task()
    {
        Trap[] items = [new() { Mode = "ok", Value = 1 }, new() { Mode = "exit-decode", Value = 2 }, new() { Mode = "ok", Value = 3 }];
        Outcome<int>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.TrapValue, items, chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(30));
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        outcomes[1].Exception.Should().BeOfType<WorkerCrashedException>();
        await Pool.WhenAllWorkersAsync().WaitAsync(Short);
    }

    /// <summary>concurrent.futures ExecutorDeadlockTest "exit during pickling of the result".</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_result_whose_encoding_kills_the_worker_fails_only_its_task()
    {
        Outcome<Trap>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.MakeTrap, new[] { "ok", "exit-encode", "ok" }, chunkSize: 3).WaitAsync(Short);
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        WorkerCrashedException crash = outcomes[1].Exception.Should().BeOfType<WorkerCrashedException>().Which;
        crash.TaskIndex.Should().Be(1);
        crash.ExitCode.Should().Be(7);
        await Pool.WhenAllWorkersAsync().WaitAsync(Short);
    }

    /// <summary>concurrent.futures ExecutorDeadlockTest "error during unpickling of the result" (in the host).</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_result_that_fails_to_decode_in_the_host_fails_only_its_task()
    {
        Outcome<Trap>[] outcomes = await Pool.MapOutcomesAsync(ParityFunctions.MakeTrap, new[] { "ok", "throw-decode-host", "ok" }, chunkSize: 3).WaitAsync(Short);
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        outcomes[1].Exception!.Message.Should().Contain("could not be deserialized");
    }

    // ---------------------------------------------------------------- AsyncResult

    /// <summary>CPython test_async_timeout, AsyncResult.ready/successful (ValueError when not ready).</summary>
    [Fact(Timeout = 30_000)]
    public async Task Get_with_a_short_timeout_throws_then_the_result_arrives_and_ready_and_successful_follow()
    {
        // 5 s: the short waits below must all fall before it ends, even when a loaded machine deschedules this thread
        // (700 ms failed in 1 of 8 full runs under load).
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Sleep, 5000);
        result.Invoking(r => r.Get(TimeSpan.Zero)).Should().Throw<TimeoutException>();
        result.Invoking(r => r.Get(TimeSpan.FromMilliseconds(50))).Should().Throw<TimeoutException>();
        result.Ready.Should().BeFalse();
        result.Invoking(r => r.Successful).Should().Throw<InvalidOperationException>();
        result.Wait(TimeSpan.FromMilliseconds(10)).Should().BeFalse();
        (await Task.Run(() => result.Get(Short))).Should().Be(5000);
        result.Ready.Should().BeTrue();
        result.Successful.Should().BeTrue();
        result.Wait(TimeSpan.Zero).Should().BeTrue();
    }

    /// <summary>CPython: get(timeout) with a negative timeout (Event.wait(-1)) does not wait and raises TimeoutError if not ready.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Get_and_Wait_with_a_negative_timeout_do_not_wait_and_say_not_ready()
    {
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Sleep, 500);
        result.Invoking(r => r.Get(TimeSpan.FromSeconds(-2))).Should().Throw<TimeoutException>();
        result.Invoking(r => r.Wait(TimeSpan.FromMilliseconds(-5))).Should().NotThrow().Which.Should().BeFalse();
        (await result.Task.WaitAsync(Short)).Should().Be(500);
    }

    /// <summary>pebble test_process_pool_timeout_callback: the error callback gets the timeout error.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_task_timeout_reaches_the_error_callback_and_get()
    {
        var errors = new List<Exception>();
        AsyncResult<int> result = Pool.ApplyAsync(Functions.Sleep, 5_000, callback: _ => errors.Add(new InvalidOperationException("callback ran")), errorCallback: errors.Add, taskTimeout: TimeSpan.FromMilliseconds(300));
        result.Invoking(r => r.Get(Short)).Should().Throw<TaskTimeoutException>();
        errors.Should().ContainSingle().Which.Should().BeOfType<TaskTimeoutException>();
        result.Successful.Should().BeFalse();
        await Pool.WhenAllWorkersAsync().WaitAsync(Short);
    }

    /// <summary>pebble test_process_pool_cancel_callback / concurrent.futures cancel: a cancelled apply is ready, not successful.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Cancelling_an_apply_runs_the_error_callback_and_makes_it_ready_and_unsuccessful()
    {
        using var cancellation = new CancellationTokenSource();
        Exception? seen = null;
        AsyncResult<int> result = Pool.ApplyAsync(Functions.SleepCooperatively, 10_000, errorCallback: e => seen = e, cancellationToken: cancellation.Token);
        await cancellation.CancelAsync();
        result.Wait(Short).Should().BeTrue();
        result.Ready.Should().BeTrue();
        result.Successful.Should().BeFalse();
        result.Invoking(r => r.Get()).Should().Throw<OperationCanceledException>();
        seen.Should().BeAssignableTo<OperationCanceledException>();
    }

    [Fact(Timeout = 30_000)]
    public async Task A_token_cancelled_before_the_call_cancels_every_shape()
    {
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();
        CancellationToken token = cancellation.Token;

        await FluentActions.Awaiting(() => Pool.MapAsync(Functions.Square, new[] { 1, 2 }, cancellationToken: token).WaitAsync(Short)).Should().ThrowAsync<OperationCanceledException>();
        FluentActions.Invoking(() => Pool.Apply(Functions.Square, 1, cancellationToken: token)).Should().Throw<OperationCanceledException>();
        FluentActions.Invoking(() => Pool.Imap(Functions.Square, new[] { 1, 2 }, cancellationToken: token).ToArray()).Should().Throw<OperationCanceledException>();
        await FluentActions.Awaiting(() => Pool.ImapAsync(Functions.Square, new[] { 1, 2 }, cancellationToken: token).ToArrayAsync().AsTask().WaitAsync(Short))
            .Should().ThrowAsync<OperationCanceledException>();
        (await Pool.MapAsync(Functions.Square, new[] { 3 }).WaitAsync(Short)).Should().Equal(9);
    }

    // ---------------------------------------------------------------- timeouts

    /// <summary>
    /// pebble: a result that arrives after its task's timeout is not delivered as a value; the task is a timeout, the
    /// worker's next tasks get their own results (nothing shifts by one).
    /// </summary>
    [Fact(Timeout = 40_000)]
    public async Task A_result_arriving_after_its_timeout_is_a_timeout_and_shifts_nothing()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions { CancellationGrace = TimeSpan.FromSeconds(3) });
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Functions.IgnoreToken, new[] { 800, 11, 12 }, chunkSize: 1, taskTimeout: TimeSpan.FromMilliseconds(200))
            .WaitAsync(Short);
        outcomes[0].Exception.Should().BeOfType<TaskTimeoutException>("task 0 ran 800 ms past its 200 ms timeout; it ended as {0}", outcomes[0].Succeeded ? $"value {outcomes[0].Value}" : outcomes[0].Exception!.ToString());
        outcomes[1].Value.Should().Be(11);
        outcomes[2].Value.Should().Be(12);
        (await pool.MapAsync(Functions.Square, new[] { 4, 5 }).WaitAsync(Short)).Should().Equal(16, 25);
    }

    // ---------------------------------------------------------------- lifecycle

    /// <summary>CPython test_terminate: terminate during a long map of many tasks is quick, join follows.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Terminate_during_a_map_of_ten_thousand_tasks_fails_it_and_join_is_quick()
    {
        ProcessPool pool = await TestPools.StartAsync();
        Task<int[]> map = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(100, 10_000), chunkSize: 1);
        AsyncResult<int> apply = pool.ApplyAsync(Functions.Sleep, 10_000);
        var clock = Stopwatch.StartNew();
        pool.Terminate();
        await pool.JoinAsync().WaitAsync(Short);
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
        await map.Invoking(m => m.WaitAsync(Short)).Should().ThrowAsync<PoolTerminatedException>();
        apply.Invoking(a => a.Get(Short)).Should().Throw<PoolTerminatedException>();
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>CPython test_context / test_enter: after the pool is gone every call is refused clearly; Close, Terminate, Join stay harmless.</summary>
    [Fact(Timeout = 30_000)]
    public async Task After_dispose_every_call_is_refused_and_close_terminate_join_are_harmless()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 1);
        await pool.DisposeAsync();
        var refusals = new (string Name, Action Call)[]
        {
            ("Map", () => pool.Map(Functions.Square, new[] { 1 })),
            ("MapAsync", () => pool.MapAsync(Functions.Square, new[] { 1 })),
            ("MapOutcomes", () => pool.MapOutcomes(Functions.Square, new[] { 1 })),
            ("ImapAsync", () => pool.ImapAsync(Functions.Square, new[] { 1 })),
            ("ImapUnorderedAsync", () => pool.ImapUnorderedAsync(Functions.Square, new[] { 1 })),
            ("ImapOutcomes", () => pool.ImapOutcomes(Functions.Square, new[] { 1 })),
            ("StarMapAsync", () => pool.StarMapAsync(Functions.Concat, new[] { ("a", 1) })),
            ("zipped Map", () => pool.Map(Functions.Concat, new[] { "a" }, new[] { 1 })),
            ("ApplyAsync()", () => pool.ApplyAsync(Functions.ProcessIdOfCaller)),
            ("Apply", () => pool.Apply(Functions.Square, 1)),
        };
        foreach ((string name, Action call) in refusals)
        {
            call.Should().Throw<InvalidOperationException>(name).WithMessage("*terminated*");
        }

        pool.Close();
        pool.Terminate();
        await pool.JoinAsync().WaitAsync(Short);
        pool.Join();
        pool.Dispose();
    }

    /// <summary>CPython: close() then terminate() then join() (and join twice) all end.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Close_then_terminate_then_join_twice_ends_and_fails_the_unfinished_work()
    {
        ProcessPool pool = await TestPools.StartAsync();
        Task<int[]> map = pool.MapAsync(Functions.Sleep, Enumerable.Repeat(5_000, 4), chunkSize: 1);
        pool.Close();
        pool.Invoking(p => p.Map(Functions.Square, new[] { 1 })).Should().Throw<InvalidOperationException>().WithMessage("*closed*");
        pool.Terminate();
        await pool.JoinAsync().WaitAsync(Short);
        await pool.JoinAsync().WaitAsync(Short);
        await map.Invoking(m => m.WaitAsync(Short)).Should().ThrowAsync<PoolTerminatedException>();
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    /// <summary>Close() while an Imap is being read: the rest of the results still arrive, then Join ends.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Closing_the_pool_in_the_middle_of_reading_an_Imap_lets_its_results_finish()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            var results = new List<int>();
            await Task.Run(() =>
            {
                foreach (int value in pool.Imap(Functions.Increment, Enumerable.Range(0, 2_000), chunkSize: 1))
                {
                    results.Add(value);
                    if (results.Count == 5)
                    {
                        pool.Close();
                    }
                }
            }).WaitAsync(Short);

            results.Should().Equal(Enumerable.Range(1, 2_000));
            await pool.JoinAsync().WaitAsync(Short);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }

    /// <summary>Dispose while an Imap is being read (a `using` block left from another thread): the reader gets a clear error, no hang.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Disposing_the_pool_in_the_middle_of_reading_an_Imap_ends_the_enumeration_with_pool_terminated()
    {
        ProcessPool pool = await TestPools.StartAsync();
        var results = new List<int>();
        Func<Task> read = () => Task.Run(() =>
        {
            foreach (int value in pool.Imap(Functions.Sleep, Enumerable.Repeat(20, 10_000), chunkSize: 1))
            {
                results.Add(value);
                if (results.Count == 5)
                {
                    pool.Dispose();
                }
            }
        }).WaitAsync(Short);

        await read.Should().ThrowAsync<PoolTerminatedException>();
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>CPython (terminate() called from a result callback deadlocked the result-handler thread): here it must end.</summary>
    [Fact(Timeout = 30_000)]
    public async Task Terminating_or_disposing_the_pool_from_a_callback_does_not_deadlock()
    {
        ProcessPool pool = await TestPools.StartAsync(workers: 3);
        AsyncResult<int> pending = pool.ApplyAsync(Functions.Sleep, 10_000);
        Exception? pendingError = null;
        AsyncResult<int> other = pool.ApplyAsync(Functions.Sleep, 10_000, errorCallback: e => pendingError = e);
        TimeSpan disposing = TimeSpan.MaxValue;
        AsyncResult<int> first = pool.ApplyAsync(Functions.Square, 3, callback: _ =>
        {
            var clock = Stopwatch.StartNew();
            pool.Dispose();
            disposing = clock.Elapsed;
        });
        (await first.Task.WaitAsync(Short)).Should().Be(9);
        disposing.Should().BeLessThan(TimeSpan.FromSeconds(5), "Dispose from a callback returns promptly");
        await pool.JoinAsync().WaitAsync(Short);
        pending.Invoking(p => p.Get(Short)).Should().Throw<PoolTerminatedException>();
        other.Wait(Short).Should().BeTrue();
        pendingError.Should().BeOfType<PoolTerminatedException>("the error callback of a terminated task runs");
        TestPools.AssertGone(pool.StartedProcessIds);
    }

    /// <summary>CPython / pebble: with a worker idle, a short task does not wait behind a long one.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_short_apply_runs_on_the_idle_worker_rather_than_behind_a_long_task()
    {
        AsyncResult<int> slow = Pool.ApplyAsync(Functions.Sleep, 3_000);
        var clock = Stopwatch.StartNew();
        (await Pool.ApplyAsync(Functions.Square, 7).Task.WaitAsync(Short)).Should().Be(49);
        clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(2.5), "it did not wait for the 3 s task");
        (await slow.Task.WaitAsync(Short)).Should().Be(3_000);
    }

    // ---------------------------------------------------------------- dead workers and initializers

    /// <summary>
    /// CPython's initializer that exits (sys.exit in an initializer: the pool respawned workers forever); here the initializer
    /// ends the worker's process. The call must fail (not hang) and the pool must stop starting workers.
    /// </summary>
    [Fact(Timeout = 40_000)]
    public async Task An_initializer_that_kills_its_worker_fails_the_call_and_does_not_respawn_forever()
    {
        ProcessPool pool;
        try
        {
            pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions().WithInitializer(ParityFunctions.ExitInInitializer)).WaitAsync(Short);
        }
        catch (WorkerStartException)
        {
            return; // refusing to start is a fine answer
        }

        try
        {
            Func<Task> map = () => pool.MapAsync(Functions.Increment, new[] { 1, 2, 3 }).WaitAsync(Short);
            Exception error = (await map.Should().ThrowAsync<Exception>()).Which;
            // The pool stopped (InitializerException is how it does): a stopped pool starts no worker.
            error.Should().BeOfType<InitializerException>("the pool stops starting workers that die in their initializer; got {0}", error.Message);
            pool.StartedProcessIds.Count.Should().BeLessThanOrEqualTo(1 + ProcessPoolOptions.InitializerAttempts);
        }
        finally
        {
            await pool.DisposeAsync().AsTask().WaitAsync(Short);
        }
    }

    /// <summary>loky test_crash_races / pebble: a worker killed while idle is replaced and the next call runs whole.</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_worker_killed_while_idle_is_replaced_and_the_next_map_runs_whole()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int victim = pool.ProcessIds[0];
        Process.GetProcessById(victim).Kill();
        int[] results = await pool.MapAsync(Functions.Increment, Enumerable.Range(0, 40), chunkSize: 1).WaitAsync(Short);
        results.Should().Equal(Enumerable.Range(1, 40));
        await pool.WhenAllWorkersAsync().WaitAsync(Short);
        pool.ProcessIds.Should().NotContain(victim).And.HaveCount(2);
    }

    /// <summary>CPython test_pool_worker_lifetime with apply_async: maxtasksperchild=1 gives each task a fresh process.</summary>
    [Fact(Timeout = 30_000)]
    public async Task With_one_task_per_worker_every_apply_runs_in_a_fresh_process()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { MaxTasksPerWorker = 1 });
        AsyncResult<int>[] results = [.. Enumerable.Range(0, 6).Select(_ => pool.ApplyAsync(Functions.ProcessId, 0))];
        int[] pids = await Task.WhenAll(results.Select(r => r.Task)).WaitAsync(Short);
        pids.Should().OnlyHaveUniqueItems();
        pool.Close();
        await pool.JoinAsync().WaitAsync(Short);
    }

    // ---------------------------------------------------------------- scale

    [Fact(Timeout = 40_000)]
    public async Task A_huge_number_of_tiny_tasks_all_complete_in_every_shape()
    {
        int[] mapped = await Pool.MapAsync(Functions.Increment, Enumerable.Range(0, 1_000_000)).WaitAsync(Short);
        mapped.Should().HaveCount(1_000_000);
        mapped[999_999].Should().Be(1_000_000);

        long sum = 0;
        int count = 0;
        await foreach ((long index, int value) in Pool.ImapUnorderedAsync(Functions.Increment, Enumerable.Range(0, 100_000)))
        {
            value.Should().Be((int)index + 1);
            sum += value;
            count++;
        }

        count.Should().Be(100_000);
        sum.Should().Be(100_000L * 100_001 / 2);

        AsyncResult<int>[] applies = [.. Enumerable.Range(0, 3_000).Select(i => Pool.ApplyAsync(Functions.Square, i))];
        int[] squares = await Task.WhenAll(applies.Select(a => a.Task)).WaitAsync(Short);
        squares.Should().Equal(Enumerable.Range(0, 3_000).Select(i => i * i));
    }

    /// <summary>pebble test_process_pool_large_data, CPython bpo-17560 (results over 2 GiB are out of scope here).</summary>
    [Fact(Timeout = 40_000)]
    public async Task Very_large_results_arrive_whole()
    {
        byte[] bytes = await Pool.ApplyAsync(ParityFunctions.BigBytes, 64).Task.WaitAsync(Short);
        bytes.Length.Should().Be(64 << 20);
        bytes[^1].Should().Be((byte)((bytes.Length - 1) % 251));

        string text = await Pool.ApplyAsync(ParityFunctions.BigString, 8 << 20).Task.WaitAsync(Short);
        text.Length.Should().Be(8 << 20);

        int[][] arrays = await Pool.MapAsync(ParityFunctions.BigInts, new[] { 1, 2, 3, 4 }).WaitAsync(Short);
        arrays.Select(a => a.Length).Should().Equal(Enumerable.Repeat(2 << 20, 4));
        arrays[3][12345].Should().Be(4 + 12345);

        List<string> strings = await Pool.ApplyAsync(ParityFunctions.ManyStrings, 200_000).Task.WaitAsync(Short);
        strings.Should().HaveCount(200_000);
    }

    /// <summary>loky / joblib nested parallelism: a task that runs its own Imap in a pool of its own.</summary>
    [Fact(Timeout = 40_000)]
    public async Task A_task_can_run_an_imap_in_a_pool_of_its_own()
    {
        int[] sums = await Pool.MapAsync(ParityFunctions.NestedImapSum, new[] { 10, 20 }, chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(30));
        sums.Should().Equal(Enumerable.Range(0, 10).Sum(x => x * x), Enumerable.Range(0, 20).Sum(x => x * x));
    }

    /// <summary>
    /// loky's test_max_depth: a pool inside a worker runs one level deeper, and a process ten pools deep may not start
    /// another (LokyRecursionError there), so a task that starts a pool that runs the same task again fails at once
    /// instead of starting processes until the machine runs out. The refusal runs in tests/Pool.TestHost, started as a
    /// worker ten deep would be.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task A_pool_in_a_task_runs_one_level_deeper_and_pools_nest_at_most_ten_deep()
    {
        (await Pool.ApplyAsync(ParityFunctions.NestedDepths, 0).Task.WaitAsync(TimeSpan.FromSeconds(30))).Should().Be("1 2");

        BufferedCommandResult deep = await TestPools.RunTestHostAsync("nested-depth", new Dictionary<string, string?> { ["PROCESSPOOL_DEPTH"] = "10" });
        deep.StandardOutput.Trim().Should().Match("refused InvalidOperationException: *nested 10 deep*at most 10 deep*InProcess = true*", deep.StandardError);
        BufferedCommandResult shallower = await TestPools.RunTestHostAsync("nested-depth", new Dictionary<string, string?> { ["PROCESSPOOL_DEPTH"] = "9" });
        shallower.StandardOutput.Trim().Should().Be("started 10", shallower.StandardError);
    }

    // ---------------------------------------------------------------- references

    /// <summary>
    /// CPython test_release_task_refs (bpo-29861): a call's arguments and results are not kept alive by the pool once
    /// the call is done, through every shape, including an Imap left early and tasks that failed.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task Arguments_and_results_are_not_kept_by_the_pool_once_their_call_is_done()
    {
        string[] shapes = ["Map", "MapAsync", "MapOutcomes", "StarMap", "Imap", "ImapUnordered", "ImapAsync", "Apply", "ApplyAsync", "Run", "Imap left early", "Apply that throws"];
        foreach (string shape in shapes)
        {
            WeakReference[] references = await Task.Run(() => CallAndForget(Pool, shape)).WaitAsync(Short);
            for (int attempt = 0; attempt < 50 && references.Any(r => r.IsAlive); attempt++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                await Task.Delay(20);
            }

            references.Count(r => r.IsAlive).Should().Be(0, $"{shape}: no argument or result outlives its call");
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference[] CallAndForget(ProcessPool pool, string shape)
    {
        Point[] points = [.. Enumerable.Range(0, 10).Select(i => new Point(i, i))];
        var references = points.Select(p => new WeakReference(p)).ToList();
        IEnumerable<Point> Lazy() => points.Select(p => p);
        void Keep(IEnumerable<Point> results) => references.AddRange(results.Select(p => new WeakReference(p)));
        switch (shape)
        {
            case "Map": Keep(pool.Map(Functions.Move, points)); break;
            case "MapAsync": Keep(pool.MapAsync(Functions.Move, points).GetAwaiter().GetResult()); break;
            case "MapOutcomes": Keep(pool.MapOutcomes(Functions.Move, points).Select(o => o.Value!)); break;
            case "StarMap": Keep(pool.StarMap(ParityFunctions.First, points.Select(p => (p, p)).ToArray())); break;
            case "Imap": Keep(pool.Imap(Functions.Move, Lazy(), chunkSize: 2).ToList()); break;
            case "ImapUnordered": Keep(pool.ImapUnordered(Functions.Move, Lazy()).Select(r => r.Result).ToList()); break;
            case "ImapAsync": Keep(pool.ImapAsync(Functions.Move, Lazy()).ToListAsync().AsTask().GetAwaiter().GetResult()); break;
            case "Apply": Keep(points.Select(p => pool.Apply(Functions.Move, p)).ToList()); break;
            case "ApplyAsync": Keep(points.Select(p => pool.ApplyAsync(Functions.Move, p)).ToList().Select(r => r.Get())); break;
            case "Run": Keep(pool.Run(points.Select(p => Call.Of(Functions.Move, p)))); break;
            case "Imap left early": Keep(pool.Imap(Functions.Move, Lazy(), chunkSize: 1).Take(3).ToList()); break;
            case "Apply that throws":
                foreach (Point p in points)
                {
                    pool.Invoking(x => x.Apply(ParityFunctions.Refuse, p)).Should().Throw<ArgumentException>();
                }

                break;
        }

        return [.. references];
    }

    // ---------------------------------------------------------------- helpers

    private static IEnumerable<int> ThrowsAfter(int count)
    {
        for (int i = 0; i < count; i++)
        {
            yield return i;
        }

        throw new FormatException("input broke");
    }

    private static async IAsyncEnumerable<int> ToAsync(IEnumerable<int> items)
    {
        foreach (int item in items)
        {
            await Task.Yield();
            yield return item;
        }
    }

    private static async IAsyncEnumerable<int> Empty()
    {
        await Task.Yield();
        yield break;
    }
}

/// <summary>A pool of two workers that know they are workers (AUDIT_WORKER=1), for functions that misbehave only there.</summary>
public sealed class ParityPoolFixture : IAsyncLifetime
{
    private ProcessPool? _pool;

    public ProcessPool Pool => _pool ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async Task InitializeAsync() => _pool = await TestPools.StartAsync(options: new ProcessPoolOptions
    {
        WorkerEnvironment = new Dictionary<string, string?> { ["AUDIT_WORKER"] = "1" },
    });

    public Task DisposeAsync() => _pool is null ? Task.CompletedTask : TestPools.DisposeAndAssertNoWorkersAsync(_pool);
}

public sealed class ParityException(string message, int code) : Exception(message)
{
    public int Code { get; } = code;
}

public sealed class BadMessageException : Exception
{
    public override string Message => throw new InvalidOperationException("the Message getter broke");
}

public sealed class NullMessageException : Exception
{
    public override string Message => null!;
}

/// <summary>A value that misbehaves, as its Mode says, when it is encoded or decoded in a worker (or decoded in the host).</summary>
public sealed class Trap
{
    private static bool InWorker => Environment.GetEnvironmentVariable("AUDIT_WORKER") == "1";

    public string Mode { get; set; } = "ok";

    public int Value { get; set; }

    public string Payload
    {
        get
        {
            if (InWorker && Mode == "throw-encode")
            {
                throw new InvalidOperationException("cannot encode this trap");
            }

            if (InWorker && Mode == "exit-encode")
            {
                Console.Out.Flush();
                Environment.Exit(7);
            }

            return "payload";
        }

        set
        {
            if (InWorker && Mode == "throw-decode")
            {
                throw new InvalidOperationException("cannot decode this trap");
            }

            if (InWorker && Mode == "exit-decode")
            {
                Environment.Exit(8);
            }

            if (!InWorker && Mode == "throw-decode-host")
            {
                throw new InvalidOperationException("the host cannot decode this trap");
            }

            _ = value;
        }
    }
}

public sealed class Node
{
    public int Id { get; set; }

    public Node? Next { get; set; }
}

public static class ParityFunctions
{
    public static Point First(Point a, Point b) => a with { Y = b.Y + 1 };

    public static Point Refuse(Point p) => throw new ArgumentException($"no {p}");

    public static int ThrowCustom(int x) => throw new ParityException($"custom failure {x}", x);

    public static int RaiseLargeError(int x) => throw new ArgumentException(new string('x', 1 << 20));

    public static string ThrowBadMessage(int x) => x == 1 ? throw new BadMessageException() : x.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string ThrowNullMessage(int x) => x == 1 ? throw new NullMessageException() : x.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static int ThrowAggregate(int count) =>
        throw new AggregateException(Enumerable.Range(0, count).Select(i => new InvalidOperationException($"item {i} failed")));

    public static int ThrowCanceled(int x) => throw new OperationCanceledException($"gave up on {x} by myself");

    public static async Task<int> ThrowTaskCanceledAsync(int x)
    {
        await Task.Yield();
        throw new TaskCanceledException($"an HTTP timeout for {x}");
    }

    public static Trap MakeTrap(string mode) => new() { Mode = mode, Value = 1 };

    public static int TrapValue(Trap trap) => trap.Value;

    public static Node MakeNode(bool cycle)
    {
        var node = new Node { Id = 1 };
        if (cycle)
        {
            node.Next = node;
        }

        return node;
    }

    public static void ExitInInitializer() => Environment.Exit(5);

    public static byte[] BigBytes(int megabytes)
    {
        byte[] bytes = new byte[megabytes << 20];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(i % 251);
        }

        return bytes;
    }

    public static string BigString(int length) => new('s', length);

    public static int[] BigInts(int start)
    {
        int[] values = new int[2 << 20];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = start + i;
        }

        return values;
    }

    public static List<string> ManyStrings(int count) => [.. Enumerable.Range(0, count).Select(i => $"item {i}")];

    public static int NestedImapSum(int count)
    {
        using var inner = new ProcessPool(new ProcessPoolOptions { Workers = 1, WorkerOutput = _ => { } });
        return inner.Imap(Functions.Square, Enumerable.Range(0, count)).Sum();
    }

    /// <summary>The nesting depth this worker sees, and the one a worker of a pool it starts sees: "1 2" from a pool's task.</summary>
    public static string NestedDepths(int _)
    {
        using var inner = new ProcessPool(new ProcessPoolOptions { Workers = 1, WorkerOutput = _ => { } });
        return $"{Environment.GetEnvironmentVariable("PROCESSPOOL_DEPTH")} {inner.Apply(() => Environment.GetEnvironmentVariable("PROCESSPOOL_DEPTH"))}";
    }
}
