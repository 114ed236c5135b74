using CliWrap;
using CliWrap.Buffered;
using Pool.Internal;

namespace Pool.Tests;

/// <summary>Pools for tests, and the check that none of their workers outlives them.</summary>
internal static class TestPools
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs tests/Pool.TestHost in <paramref name="mode"/> to its end (at most 90 s), in a process of its own: for what a
    /// test process cannot do to itself (cap its thread pool, exit with a shared pool, lose its terminal).
    /// </summary>
    public static async Task<BufferedCommandResult> RunTestHostAsync(string mode, IReadOnlyDictionary<string, string?>? environment = null)
    {
        string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        return await Cli.Wrap(dotnet).WithArguments([host, mode])
            .WithEnvironmentVariables(environment ?? new Dictionary<string, string?>())
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(bound.Token);
    }

    public static Task<ProcessPool> StartAsync(int workers = 2, ProcessPoolOptions? options = null) =>
        ProcessPool.StartAsync((options ?? new ProcessPoolOptions()) with { Workers = options?.Workers ?? workers, WorkerOutput = options?.WorkerOutput ?? (_ => { }) });

    /// <summary>Disposes the pool and asserts that every worker process it ever started has exited.</summary>
    public static async Task DisposeAndAssertNoWorkersAsync(ProcessPool pool)
    {
        IReadOnlyList<int> started = pool.StartedProcessIds;
        await pool.DisposeAsync().AsTask().WaitAsync(Bound);
        AssertGone(started);
    }

    public static void AssertGone(IEnumerable<int> processIds)
    {
        int[] alive = [.. processIds.Where(id => id != Environment.ProcessId && ProcessTree.IsAlive(id))];
        alive.Should().BeEmpty("no worker may outlive its pool");
    }

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Bound);

    public static Task Within(this Task task) => task.WaitAsync(Bound);
}

/// <summary>One pool of two workers shared by a test class; disposed, and checked for leftovers, at its end.</summary>
public sealed class PoolFixture : IAsyncLifetime
{
    private ProcessPool? _pool;

    public ProcessPool Pool => _pool ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async Task InitializeAsync() => _pool = await TestPools.StartAsync();

    public Task DisposeAsync() => _pool is null ? Task.CompletedTask : TestPools.DisposeAndAssertNoWorkersAsync(_pool);
}

/// <summary>One pool of two workers with <see cref="JsonPoolSerializer"/>, the option to the default MessagePack, shared by a test class.</summary>
public sealed class JsonPoolFixture : IAsyncLifetime
{
    private ProcessPool? _pool;

    public ProcessPool Pool => _pool ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async Task InitializeAsync() => _pool = await TestPools.StartAsync(options: new ProcessPoolOptions { Serializer = new JsonPoolSerializer() });

    public Task DisposeAsync() => _pool is null ? Task.CompletedTask : TestPools.DisposeAndAssertNoWorkersAsync(_pool);
}
