using System.Diagnostics;
using System.Globalization;

namespace Pool.Bench.Workloads;

/// <summary>
/// W6, crash: 100 tasks of <c>x + 1</c> in Map's default chunks (13 on 2 workers), where
/// task 50 ends its worker: <c>Environment.FailFast</c>, <c>Environment.Exit(1)</c>, a native segfault, a
/// stack overflow. Checks that the 99 other results arrive, that task 50 fails with
/// <see cref="WorkerCrashedException"/>, and that the pool still works after; measures the ms from the crash
/// to task 50's error reaching the caller, and to the pool having all its workers again. The crashing task
/// writes its <see cref="Stopwatch"/> timestamp (CLOCK_MONOTONIC, shared by every process) just before it
/// crashes; the pool is watched through <see cref="ProcessPool.ProcessIds"/>, polled every millisecond.
/// Outcomes arrive in input order (<c>ImapOutcomes</c>), so the error is seen once tasks 0..49 are done.
/// A crash the library does not handle yet is a failed check; the bench carries on.
/// </summary>
internal static class W6Crash
{
    private const string Id = "W6";
    private const int Tasks = 100;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static readonly (string Name, Func<int, int> Function)[] Kinds =
    [
        ("FailFast", Functions.IncrementOrFailFast),
        ("Exit(1)", Functions.IncrementOrExit1),
        ("segfault", Functions.IncrementOrSegfault),
        ("stack overflow", Functions.IncrementOrStackOverflow),
    ];

    public static void Run(BenchContext context)
    {
        foreach ((string name, Func<int, int> function) in Kinds)
        {
            RunKind(context, name, function);
        }
    }

    private static void RunKind(BenchContext context, string name, Func<int, int> function)
    {
        string stampFile = Path.Combine(Path.GetTempPath(), $"pool-bench-crash-{Environment.ProcessId}-{Guid.NewGuid():N}");
        ProcessPoolOptions options = context.PoolOptions() with
        {
            WorkerEnvironment = new Dictionary<string, string?> { [Functions.CrashStampVariable] = stampFile },
        };
        var pool = new ProcessPool(options);
        var runs = new List<Attempt>();
        try
        {
            // One warm-up run, then the measured ones; the first failure ends the kind: later runs would only repeat it.
            for (int i = 0; i <= context.Reps; i++)
            {
                Attempt run = Scenario(pool, function, stampFile, context.Workers);
                if (i > 0 || run.Failure is not null)
                {
                    runs.Add(run);
                }

                if (run.Failure is not null)
                {
                    break;
                }
            }
        }
        finally
        {
            File.Delete(stampFile);
            if (!pool.DisposeAsync().AsTask().Wait(Bound))
            {
                context.Note(Id, $"{name}: the pool did not terminate within {Bound.TotalSeconds:F0} s");
            }
        }

        Attempt? failed = runs.FirstOrDefault(r => r.Failure is not null);
        context.Add(Figure.Check(Id, $"{name}: 99 results, WorkerCrashed, usable", failed is null, failed?.Failure ?? runs.LastOrDefault()?.Exit));
        AddTimes(context, $"{name}: crash → error seen", [.. runs.Select(r => r.ErrorMs).OfType<double>()]);
        AddTimes(context, $"{name}: crash → {context.Workers} workers again", [.. runs.Select(r => r.RecoveryMs).OfType<double>()]);
    }

    private static void AddTimes(BenchContext context, string variant, double[] values) =>
        context.Add(values.Length > 0
            ? new Figure(Id, variant, Impls.ProcessPool, Units.Milliseconds, Stats.Of(values))
            : Figure.Skipped(Id, variant, Impls.ProcessPool, Units.Milliseconds, "not measured (see the check)"));

    /// <summary>One run of the 100 tasks; never throws: what went wrong is in <see cref="Attempt.Failure"/>.</summary>
    private static Attempt Scenario(ProcessPool pool, Func<int, int> function, string stampFile, int workers)
    {
        File.Delete(stampFile);
        int[] before = [.. pool.ProcessIds];
        int chunkSize = (Tasks + (4 * workers) - 1) / (4 * workers); // Map's default: ceil(n / (4 × workers))
        using var deadline = new CancellationTokenSource(Bound);
        Task<long?> recovered = PoolWatch.NewWorkerAsync(pool, before, workers, deadline.Token);

        long? errorSeen = null;
        Exception? error = null;
        var problems = new List<string>();
        try
        {
            int others = 0;
            foreach (Outcome<int> outcome in pool.ImapOutcomes(function, Enumerable.Range(0, Tasks), chunkSize: chunkSize, cancellationToken: deadline.Token))
            {
                if (outcome.Index == Functions.CrashingTask)
                {
                    errorSeen = Stopwatch.GetTimestamp();
                    error = outcome.Exception;
                }
                else if (outcome.Succeeded && outcome.Value == outcome.Index + 1)
                {
                    others++;
                }
            }

            if (others != Tasks - 1)
            {
                problems.Add($"{others} of the {Tasks - 1} other results arrived");
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            problems.Add($"the 100 tasks did not finish within {Bound.TotalSeconds:F0} s");
        }
        catch (Exception e) when (e is ProcessPoolException or InvalidOperationException)
        {
            problems.Add($"the call threw {e.GetType().Name}: {e.Message}");
        }

        if (error is not WorkerCrashedException)
        {
            problems.Add(error is null
                ? $"task {Functions.CrashingTask} did not fail"
                : $"task {Functions.CrashingTask} failed with {error.GetType().Name} ({error.Message}), not WorkerCrashedException");
        }

        long? recoveredAt = recovered.GetAwaiter().GetResult();
        if (recoveredAt is null)
        {
            problems.Add($"the pool did not have {workers} workers again within {Bound.TotalSeconds:F0} s");
        }

        if (problems.Count == 0 && !Usable(pool))
        {
            problems.Add("a Map after the crash did not return the right results");
        }

        long? crashedAt = ReadStamp(stampFile);
        return new Attempt(
            problems.Count == 0 ? null : string.Join("; ", problems),
            error is WorkerCrashedException c ? $"worker exit code {c.ExitCode}{(c.Signal is { } s ? " " + s : "")}" : null,
            Between(crashedAt, errorSeen),
            Between(crashedAt, recoveredAt));
    }

    private static bool Usable(ProcessPool pool)
    {
        try
        {
            Task<int[]> results = pool.MapAsync(Functions.Increment, Enumerable.Range(0, 10));
            return results.Wait(Bound) && results.Result.SequenceEqual(Enumerable.Range(1, 10));
        }
        catch (AggregateException)
        {
            return false;
        }
    }

    private static long? ReadStamp(string file) =>
        File.Exists(file) && long.TryParse(File.ReadAllText(file), NumberStyles.None, CultureInfo.InvariantCulture, out long stamp) ? stamp : null;

    private static double? Between(long? from, long? to) =>
        from is { } a && to is { } b ? PoolWatch.Milliseconds(a, b) : null;

    private sealed record Attempt(string? Failure, string? Exit, double? ErrorMs, double? RecoveryMs);
}
