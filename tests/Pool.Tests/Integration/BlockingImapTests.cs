using CliWrap.Buffered;

namespace Pool.Tests.Integration;

/// <summary>
/// The blocking <c>Imap</c> and <c>ImapUnordered</c> go on after a failure exactly as the async ones: a failed task
/// throws from <c>MoveNext</c> (at its position, or when it completes), and the next <c>MoveNext</c> carries on.
/// </summary>
public sealed class BlockingImapTests
{
    public static TheoryData<CrashKind> Kinds => [.. Enum.GetValues<CrashKind>()];

    /// <summary>
    /// Python's imap is fed and drained by the pool's own threads. A blocking Imap called from thread-pool threads (request
    /// handlers, Parallel.ForEach) must not need another thread-pool thread to make progress: its input was read on the
    /// thread pool and every wait for a result was woken there, so eight blocking Imaps on a thread pool capped at four
    /// threads never ended, and 100 at once on an uncapped one took 22 s (the pool's growth) instead of 0.4 s. Run in a
    /// host process of its own (tests/Pool.TestHost), whose thread pool it caps. Found by a sixth audit.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task Blocking_imaps_on_every_thread_of_a_capped_thread_pool_end()
    {
        BufferedCommandResult result = await TestPools.RunTestHostAsync("starved-imap");

        result.StandardOutput.Trim().Should().Be("done 8", result.StandardError);
    }

    [Theory(Timeout = 120_000)]
    [MemberData(nameof(Kinds))]
    public async Task A_blocking_imap_delivers_every_value_and_every_error_after_crashes_and_an_exception(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int[] inputs = Inputs(40, (7, (int)kind), (19, Endings.Throw), (31, (int)kind));

        (List<(long Index, int Value)> values, List<(long Index, Exception Error)> errors) =
            await Task.Run(() => Drain(pool.Imap(Endings.DoubleOrEnd, inputs, chunkSize: 2), inputs.Length)).Within();

        values.Select(v => v.Index).Should().Equal(Expected(inputs), "every value arrives, in input order");
        values.Should().OnlyContain(v => v.Value == 2 * inputs[v.Index]);
        errors.Select(e => e.Index).Should().Equal(7, 19, 31);
        errors[0].Error.Should().BeOfType<WorkerCrashedException>().Which.TaskIndex.Should().Be(7);
        errors[1].Error.Should().BeOfType<InvalidOperationException>();
        errors[2].Error.Should().BeOfType<WorkerCrashedException>().Which.TaskIndex.Should().Be(31);
    }

    [Theory(Timeout = 120_000)]
    [MemberData(nameof(Kinds))]
    public async Task A_blocking_unordered_imap_delivers_every_value_and_every_error_after_crashes_and_an_exception(CrashKind kind)
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int[] inputs = Inputs(40, (7, (int)kind), (19, Endings.Throw), (31, (int)kind));

        var values = new List<long>();
        var errors = new List<Exception>();
        await Task.Run(() =>
        {
            using IEnumerator<(long Index, int Result)> results = pool.ImapUnordered(Endings.DoubleOrEnd, inputs, chunkSize: 2).GetEnumerator();
            for (int step = 0; step <= inputs.Length; step++)
            {
                try
                {
                    if (!results.MoveNext())
                    {
                        return;
                    }

                    results.Current.Result.Should().Be(2 * inputs[results.Current.Index]);
                    values.Add(results.Current.Index);
                }
                catch (Exception e) when (e is ProcessPoolException or InvalidOperationException)
                {
                    errors.Add(e);
                }
            }

            throw new InvalidOperationException("The enumeration went on past its input.");
        }).Within();

        values.Should().BeEquivalentTo(Expected(inputs));
        errors.Should().HaveCount(3);
        errors.OfType<WorkerCrashedException>().Select(e => e.TaskIndex).Should().BeEquivalentTo(new long[] { 7, 31 });
        errors.OfType<InvalidOperationException>().Should().ContainSingle();
    }

    [Fact(Timeout = 120_000)]
    public async Task A_blocking_imap_goes_on_after_a_task_that_timed_out()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int[] inputs = Inputs(12, (4, Endings.Hang));

        (List<(long Index, int Value)> values, List<(long Index, Exception Error)> errors) =
            await Task.Run(() => Drain(pool.Imap(Endings.DoubleOrEnd, inputs, chunkSize: 1, taskTimeout: TimeSpan.FromSeconds(1)), inputs.Length)).Within();

        values.Select(v => v.Index).Should().Equal(Expected(inputs));
        errors.Should().ContainSingle().Which.Error.Should().BeOfType<TaskTimeoutException>().Which.TaskIndex.Should().Be(4);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_blocking_unordered_imap_goes_on_after_a_task_that_timed_out()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int[] inputs = Inputs(12, (4, Endings.Hang));

        int values = 0;
        var errors = new List<Exception>();
        await Task.Run(() =>
        {
            using IEnumerator<(long Index, int Result)> results = pool.ImapUnordered(Endings.DoubleOrEnd, inputs, chunkSize: 1, taskTimeout: TimeSpan.FromSeconds(1)).GetEnumerator();
            while (true)
            {
                try
                {
                    if (!results.MoveNext())
                    {
                        return;
                    }

                    values++;
                }
                catch (TaskTimeoutException e)
                {
                    errors.Add(e);
                }
            }
        }).Within();

        values.Should().Be(11);
        errors.Should().ContainSingle().Which.Should().BeOfType<TaskTimeoutException>().Which.TaskIndex.Should().Be(4);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_blocking_imap_over_many_tasks_with_many_crashes_loses_none()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        int[] inputs = [.. Enumerable.Range(0, 300).Select(i => i % 30 == 29 ? (int)CrashKind.Exit1 : i)];

        (List<(long Index, int Value)> values, List<(long Index, Exception Error)> errors) =
            await Task.Run(() => Drain(pool.Imap(Endings.DoubleOrEnd, inputs), inputs.Length)).Within();

        values.Should().HaveCount(290);
        errors.Should().HaveCount(10).And.OnlyContain(e => e.Error is WorkerCrashedException);
    }

    private static int[] Inputs(int count, params (int Index, int Input)[] endings)
    {
        int[] inputs = [.. Enumerable.Range(0, count)];
        foreach ((int index, int input) in endings)
        {
            inputs[index] = input;
        }

        return inputs;
    }

    private static long[] Expected(int[] inputs) => [.. Enumerable.Range(0, inputs.Length).Where(i => inputs[i] >= 0).Select(i => (long)i)];

    /// <summary>Takes every result of a blocking ordered enumeration, calling MoveNext again after each failure.</summary>
    private static (List<(long Index, int Value)> Values, List<(long Index, Exception Error)> Errors) Drain(IEnumerable<int> results, int count)
    {
        var values = new List<(long, int)>();
        var errors = new List<(long, Exception)>();
        using IEnumerator<int> enumerator = results.GetEnumerator();
        for (long position = 0; position <= count; position++)
        {
            try
            {
                if (!enumerator.MoveNext())
                {
                    position.Should().Be(count, "the enumeration ends after the last input");
                    return (values, errors);
                }

                values.Add((position, enumerator.Current));
            }
            catch (ProcessPoolException e)
            {
                errors.Add((position, e));
            }
            catch (InvalidOperationException e)
            {
                errors.Add((position, e));
            }
        }

        throw new InvalidOperationException("The enumeration went on past its input.");
    }
}
