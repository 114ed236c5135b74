using System.Diagnostics;

namespace Pool.Bench.Workloads;

/// <summary>
/// Watches a pool for a replaced worker by polling <see cref="ProcessPool.ProcessIds"/> every millisecond:
/// acceptable in a bench (the library itself never polls), and the only view the public API gives.
/// </summary>
internal static class PoolWatch
{
    /// <summary>
    /// Starts watching on its own thread; the task ends with the <see cref="Stopwatch"/> timestamp at which the
    /// pool had <paramref name="workers"/> workers again, one of them not among <paramref name="before"/>, or
    /// null if that did not happen before <paramref name="cancellationToken"/>.
    /// </summary>
    public static Task<long?> NewWorkerAsync(ProcessPool pool, IReadOnlyCollection<int> before, int workers, CancellationToken cancellationToken) =>
        Task.Factory.StartNew<long?>(
            () =>
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    IReadOnlyList<int> now = pool.ProcessIds;
                    if (now.Count == workers && now.Any(id => !before.Contains(id)))
                    {
                        return Stopwatch.GetTimestamp();
                    }

                    Thread.Sleep(1);
                }

                return null;
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

    public static double Milliseconds(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;
}
