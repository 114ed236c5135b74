using Pool.Internal;

namespace Pool.Tests.Packaging;

/// <summary>
/// Workers get DOTNET_PROCESSOR_COUNT, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set to
/// max(1, cores / workers), unless this process's environment or WorkerEnvironment sets them (as loky does).
/// </summary>
public class ThreadLimitTests
{
    public sealed record Settings(int ProcessorCount, string? Omp, string? OpenBlas, string? Mkl);

    public static Settings ThreadSettings(int _) =>
        new(Environment.ProcessorCount, Environment.GetEnvironmentVariable("OMP_NUM_THREADS"),
            Environment.GetEnvironmentVariable("OPENBLAS_NUM_THREADS"), Environment.GetEnvironmentVariable("MKL_NUM_THREADS"));

    private static string Limit(int workers) => Math.Max(1, Environment.ProcessorCount / workers).ToString(System.Globalization.CultureInfo.InvariantCulture);

    // What a worker should see: this process's own setting if it has one, else the limit.
    private static string Expected(string name, int workers) => Environment.GetEnvironmentVariable(name) ?? Limit(workers);

    [Fact(Timeout = 60_000)]
    public async Task Two_workers_get_cores_divided_by_workers_threads_each()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2);

        Settings[] settings = await pool.MapAsync(ThreadSettings, Enumerable.Range(0, 4), chunkSize: 1).Within();

        settings.Should().OnlyContain(s =>
            s.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture) == Expected("DOTNET_PROCESSOR_COUNT", 2)
            && s.Omp == Expected("OMP_NUM_THREADS", 2)
            && s.OpenBlas == Expected("OPENBLAS_NUM_THREADS", 2)
            && s.Mkl == Expected("MKL_NUM_THREADS", 2));
        if (Environment.ProcessorCount == 2 && Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null)
        {
            settings[0].ProcessorCount.Should().Be(1);
            settings[0].Omp.Should().Be("1");
        }

        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task WorkerEnvironment_overrides_the_limit()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: new ProcessPoolOptions
        {
            WorkerEnvironment = new Dictionary<string, string?> { ["OMP_NUM_THREADS"] = "7", ["MKL_NUM_THREADS"] = null },
        });

        Settings settings = (await pool.MapAsync(ThreadSettings, [0]).Within())[0];

        settings.Omp.Should().Be("7");
        settings.Mkl.Should().BeNull("a null value in WorkerEnvironment removes the variable");
        settings.OpenBlas.Should().Be(Expected("OPENBLAS_NUM_THREADS", 2));
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    public static int GenerationOfA1MiBArray(int _) => GC.GetGeneration(GC.AllocateUninitializedArray<byte>(1 << 20));

    [Fact(Timeout = 60_000)]
    public async Task Workers_allocate_megabyte_arguments_outside_the_large_object_heap_unless_told_otherwise()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        await using ProcessPool told = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions
        {
            WorkerEnvironment = new Dictionary<string, string?> { ["DOTNET_GCLOHThreshold"] = "14C08" },
        });

        (await pool.MapAsync(GenerationOfA1MiBArray, [0]).Within())[0].Should().Be(0, "a fresh 1 MiB array is young, not on the LOH");
        (await told.MapAsync(GenerationOfA1MiBArray, [0]).Within())[0].Should().Be(GC.MaxGeneration, "the user's threshold (85,000 bytes) wins");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        await TestPools.DisposeAndAssertNoWorkersAsync(told);
    }

    public static string? CallCountingDelay(int _) => Environment.GetEnvironmentVariable("DOTNET_TC_CallCountingDelayMs");

    [Fact(Timeout = 60_000)]
    public async Task Workers_optimize_hot_code_after_a_3_ms_pause_in_compiling_not_100_unless_told_otherwise()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1);
        await using ProcessPool told = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions
        {
            WorkerEnvironment = new Dictionary<string, string?> { ["DOTNET_TC_CallCountingDelayMs"] = "100" },
        });

        (await pool.MapAsync(CallCountingDelay, [0]).Within())[0].Should().Be(Environment.GetEnvironmentVariable("DOTNET_TC_CallCountingDelayMs") ?? "3");
        (await told.MapAsync(CallCountingDelay, [0]).Within())[0].Should().Be("100", "WorkerEnvironment wins");
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        await TestPools.DisposeAndAssertNoWorkersAsync(told);
    }

    [Fact]
    public void The_limit_is_at_least_one_and_never_replaces_what_is_set()
    {
        var user = new Dictionary<string, string?> { ["OMP_NUM_THREADS"] = "3", ["MKL_NUM_THREADS"] = null, ["OTHER"] = "x" };

        IReadOnlyDictionary<string, string?> merged = WorkerLaunch.WithThreadLimits(user, workers: Environment.ProcessorCount * 4);

        merged["OMP_NUM_THREADS"].Should().Be("3");
        merged["MKL_NUM_THREADS"].Should().BeNull();
        merged["OTHER"].Should().Be("x");
        if (Environment.GetEnvironmentVariable("OPENBLAS_NUM_THREADS") is null)
        {
            merged["OPENBLAS_NUM_THREADS"].Should().Be("1");
        }

        user.Should().HaveCount(3, "the user's dictionary is not changed");
    }
}
