using System.Diagnostics;

namespace Pool.Bench.Workloads;

/// <summary>
/// W7, runaway: one task that never returns (<see cref="Functions.Hang"/>) with a per-task timeout of 1 s.
/// Checks that it fails with a timeout and that the pool carries on; measures the ms from the deadline
/// (submit + 1 s, on an idle pool) to the error reaching the caller, and to the replacement worker being
/// in the pool.
/// </summary>
internal static class W7Runaway
{
    private const string Id = "W7";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static void Run(BenchContext context)
    {
        using var pool = new ProcessPool(context.PoolOptions() with { TaskTimeout = Timeout });
        var runs = new List<Attempt>();
        for (int i = 0; i <= context.Reps; i++)
        {
            Attempt run = Scenario(pool, context.Workers);
            if (i > 0 || run.Failure is not null)
            {
                runs.Add(run);
            }

            if (run.Failure is not null)
            {
                break;
            }
        }

        string? failure = runs.Select(r => r.Failure).FirstOrDefault(f => f is not null);
        context.Add(Figure.Check(Id, "times out, pool carries on", failure is null, failure));
        double[] errors = [.. runs.Select(r => r.ErrorMs).OfType<double>()];
        double[] replaced = [.. runs.Select(r => r.ReplacedMs).OfType<double>()];
        context.Add(errors.Length > 0
            ? new Figure(Id, "deadline → error seen", Impls.ProcessPool, Units.Milliseconds, Stats.Of(errors))
            : Figure.Skipped(Id, "deadline → error seen", Impls.ProcessPool, Units.Milliseconds, "not measured (see the check)"));
        context.Add(replaced.Length > 0
            ? new Figure(Id, "deadline → worker replaced", Impls.ProcessPool, Units.Milliseconds, Stats.Of(replaced))
            : Figure.Skipped(Id, "deadline → worker replaced", Impls.ProcessPool, Units.Milliseconds, "not measured (see the check)"));
    }

    /// <summary>One hung task; never throws: what went wrong is in <see cref="Attempt.Failure"/>.</summary>
    private static Attempt Scenario(ProcessPool pool, int workers)
    {
        int[] before = [.. pool.ProcessIds];
        using var watch = new CancellationTokenSource(Bound);
        Task<long?> replaced = PoolWatch.NewWorkerAsync(pool, before, workers, watch.Token);
        long deadline = Stopwatch.GetTimestamp() + (long)(Timeout.TotalSeconds * Stopwatch.Frequency);
        Task<int> hung = pool.ApplyAsync(Functions.Hang, 0).Task;

        Exception? error;
        try
        {
            if (!hung.Wait(Bound))
            {
                watch.Cancel();
                return new Attempt($"the task did not end within {Bound.TotalSeconds:F0} s", null, null);
            }

            error = null;
        }
        catch (AggregateException e)
        {
            error = e.InnerException;
        }

        double errorMs = PoolWatch.Milliseconds(deadline, Stopwatch.GetTimestamp());
        long? replacedAt = replaced.GetAwaiter().GetResult();
        double? replacedMs = replacedAt is { } at ? PoolWatch.Milliseconds(deadline, at) : null;
        if (error is not TaskTimeoutException)
        {
            return new Attempt($"the task ended with {error?.GetType().Name ?? "a result"}, not TaskTimeoutException", errorMs, replacedMs);
        }

        if (replacedMs is null)
        {
            return new Attempt($"no replacement worker within {Bound.TotalSeconds:F0} s", errorMs, null);
        }

        return pool.Apply(Functions.Increment, 41) == 42
            ? new Attempt(null, errorMs, replacedMs)
            : new Attempt("an Apply after the timeout returned a wrong result", errorMs, replacedMs);
    }

    private sealed record Attempt(string? Failure, double? ErrorMs, double? ReplacedMs);
}
