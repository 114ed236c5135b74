using System.Collections.Concurrent;

namespace Pool.Tests.Shipping;

/// <summary>Shipped functions that return nothing: each leaves a mark in a file, which the test reads back.</summary>
public static class VoidFunctions
{
    public static void Touch(string path) => File.WriteAllText(path, "touched");

    public static void TouchBoth(string path, int n) => File.WriteAllText(path, $"touched {n}");

    public static void TouchThree(string path, int a, int b) => File.WriteAllText(path, $"{a + b}");

    public static void TouchFour(string path, int a, int b, int c) => File.WriteAllText(path, $"{a + b + c}");

    public static void FailOnEmpty(string path)
    {
        if (path.Length == 0)
        {
            throw new ArgumentException("no path", nameof(path));
        }
    }

    public static async Task TouchAsync(string path)
    {
        await Task.Yield();
        await File.WriteAllTextAsync(path, "async");
    }

    public static async ValueTask TouchValueTaskAsync(string path, CancellationToken cancellationToken)
    {
        await Task.Yield();
        await File.WriteAllTextAsync(path, "value task", cancellationToken);
    }

    public static void TouchWithToken(string path, CancellationToken cancellationToken) => File.WriteAllText(path, cancellationToken.CanBeCanceled ? "token" : "no token");
}

/// <summary>Void functions work in every call shape: "process these files" reads as it does in Python.</summary>
public sealed class VoidFunctionTests(PoolFixture fixture) : IClassFixture<PoolFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("pp-void-").FullName;

    private ProcessPool Pool => fixture.Pool;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact(Timeout = 60_000)]
    public async Task Map_of_a_void_method_group_runs_every_item_and_returns_once_all_have_run()
    {
        string[] files = Files(6);

        await Task.Run(() => Pool.Map(VoidFunctions.Touch, files)).Within();

        files.Should().OnlyContain(f => File.ReadAllText(f) == "touched");
        await Pool.MapAsync(VoidFunctions.TouchAsync, files).Within();
        files.Should().OnlyContain(f => File.ReadAllText(f) == "async");
    }

    [Fact(Timeout = 60_000)]
    public async Task Apply_of_a_void_lambda_and_of_void_functions_of_several_arguments_runs_them()
    {
        string[] files = Files(5);

        await Task.Run(() =>
        {
            Pool.Apply(() => Console.WriteLine("hi"));
            Pool.Apply(VoidFunctions.Touch, files[0]);
            Pool.Apply(VoidFunctions.TouchBoth, files[1], 2);
            Pool.Apply(VoidFunctions.TouchThree, files[2], 1, 2);
            Pool.Apply(VoidFunctions.TouchFour, files[3], 1, 2, 3);
            Pool.Apply(VoidFunctions.TouchWithToken, files[4]);
        }).Within();

        files.Select(File.ReadAllText).Should().Equal("touched", "touched 2", "3", "6", "token");
        await Pool.ApplyAsync(VoidFunctions.TouchValueTaskAsync, files[0]).Task.Within();
        File.ReadAllText(files[0]).Should().Be("value task");
    }

    [Fact(Timeout = 60_000)]
    public async Task StarMap_and_map_over_several_sequences_take_void_functions()
    {
        string[] files = Files(3);

        await Task.Run(() => Pool.StarMap(VoidFunctions.TouchBoth, files.Select((f, i) => (f, i)))).Within();
        files.Select(File.ReadAllText).Should().Equal("touched 0", "touched 1", "touched 2");

        await Pool.MapAsync(VoidFunctions.TouchThree, files, [1, 2, 3], [10, 20, 30]).Within();
        files.Select(File.ReadAllText).Should().Equal("11", "22", "33");
    }

    [Fact(Timeout = 60_000)]
    public async Task Imap_of_a_void_function_yields_each_index_and_throws_at_a_failure_then_goes_on()
    {
        string[] files = [.. Files(2), string.Empty, .. Files(2)];
        var seen = new List<object>();

        await Task.Run(() =>
        {
            using IEnumerator<long> ended = Pool.Imap(VoidFunctions.FailOnEmpty, files, chunkSize: 1).GetEnumerator();
            while (true)
            {
                try
                {
                    if (!ended.MoveNext())
                    {
                        return;
                    }

                    seen.Add(ended.Current);
                }
                catch (ArgumentException e)
                {
                    seen.Add(e.ParamName!);
                }
            }
        }).Within();

        seen.Should().Equal(0L, 1L, "path", 3L, 4L);
        var unordered = new ConcurrentBag<long>();
        await foreach (long index in Pool.ImapUnorderedAsync(VoidFunctions.Touch, Files(4)))
        {
            unordered.Add(index);
        }

        unordered.Should().BeEquivalentTo(new long[] { 0, 1, 2, 3 });
    }

    [Fact(Timeout = 60_000)]
    public async Task A_void_function_that_throws_fails_map_with_its_own_exception()
    {
        Func<Task> map = () => Pool.MapAsync(VoidFunctions.FailOnEmpty, ["a", string.Empty]);

        (await map.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("path");
    }

    [Fact(Timeout = 60_000)]
    public async Task Outcomes_of_a_void_function_say_which_items_failed_and_every_other_item_runs()
    {
        string[] files = [.. Files(2), string.Empty, .. Files(2)];

        Outcome<ValueTuple>[] outcomes = await Pool.MapOutcomesAsync(VoidFunctions.FailOnEmpty, files, chunkSize: 1).Within();
        List<Outcome<ValueTuple>> streamed = [];
        await foreach (Outcome<ValueTuple> outcome in Pool.ImapOutcomesAsync(VoidFunctions.Touch, files.Where(f => f.Length > 0).ToAsyncEnumerable()))
        {
            streamed.Add(outcome);
        }

        outcomes.Select(o => o.Succeeded).Should().Equal(true, true, false, true, true);
        outcomes[2].Index.Should().Be(2);
        outcomes[2].Exception.Should().BeOfType<ArgumentException>().Which.ParamName.Should().Be("path");
        streamed.Select(o => o.Index).Should().Equal(0, 1, 2, 3);
        streamed.Should().OnlyContain(o => o.Succeeded);
        files.Where(f => f.Length > 0).Should().OnlyContain(f => File.ReadAllText(f) == "touched");
    }

    private string[] Files(int count) => [.. Enumerable.Range(0, count).Select(_ => Path.Combine(_directory, Guid.NewGuid().ToString("N")))];
}
