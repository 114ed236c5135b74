using System.Diagnostics;

namespace Pool.Internal;

/// <summary>
/// Reports one call's progress to its <see cref="IProgress{T}"/> (the call's own, from <see cref="ProcessPool.WithProgress"/>,
/// else <see cref="ProcessPoolOptions.Progress"/>). The router asks for a report at
/// most once per interval (<see cref="OnTasksEnded"/>, one timestamp read per chunk); the report itself runs on
/// a thread-pool work item, never on the pool's read or dispatch loops, and one at a time, so counts never go
/// down. The final report (<see cref="Finish"/>) is sent once, after every other, and the call completes after it
/// (its continuation), so that a caller never sees its results before the last progress line.
/// </summary>
/// A call made of several jobs (a <c>Run</c> of several functions) shares one reporter: each job but the last to finish
/// completes at once, and the last one sends the final report.
internal sealed class ProgressReporter(IProgress<PoolProgress> progress, TimeSpan interval, string operation, long callId, long? total, int parts = 1)
    : IThreadPoolWorkItem
{
    private int _parts = parts;
    private readonly long _startedAt = Stopwatch.GetTimestamp();
    private readonly long _intervalTicks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
    private long _nextAt = Stopwatch.GetTimestamp() + (long)(interval.TotalSeconds * Stopwatch.Frequency);
    private long _completed;
    private long _failed;
    private int _scheduled;
    private int _finalPending;
    private bool _finished;
    private Action? _then;

    /// <summary>Router: <paramref name="completed"/> more tasks have a value, <paramref name="failed"/> more an error.</summary>
    public void OnTasksEnded(int completed, int failed)
    {
        if (completed != 0)
        {
            Interlocked.Add(ref _completed, completed);
        }

        if (failed != 0)
        {
            Interlocked.Add(ref _failed, failed);
        }

        long now = Stopwatch.GetTimestamp();
        long next = Volatile.Read(ref _nextAt);
        if (now >= next && Interlocked.CompareExchange(ref _nextAt, now + _intervalTicks, next) == next)
        {
            Schedule();
        }
    }

    /// <summary>The call has every outcome (or was stopped): one last report, then <paramref name="then"/> (the call's completion).</summary>
    public void Finish(Action? then)
    {
        if (Interlocked.Decrement(ref _parts) > 0)
        {
            then?.Invoke();
            return;
        }

        Volatile.Write(ref _then, then);
        Volatile.Write(ref _finalPending, 1);
        Schedule();
    }

    void IThreadPoolWorkItem.Execute()
    {
        while (true)
        {
            bool final = Interlocked.Exchange(ref _finalPending, 0) == 1;
            if (!_finished)
            {
                _finished = final;
                Report(final);
                if (final)
                {
                    Volatile.Read(ref _then)?.Invoke();
                }
            }

            Volatile.Write(ref _scheduled, 0);
            // A final report asked for while this one ran is sent now, by this work item.
            if (Volatile.Read(ref _finalPending) == 0 || Interlocked.CompareExchange(ref _scheduled, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void Schedule()
    {
        if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    private void Report(bool final)
    {
        var report = new PoolProgress(
            operation, callId, Volatile.Read(ref _completed), Volatile.Read(ref _failed), total, Stopwatch.GetElapsedTime(_startedAt), final);
        try
        {
            progress.Report(report);
        }
        catch (Exception e)
        {
            // User code: a throwing progress handler must not take down the thread pool or the call.
            Console.Error.WriteLine($"ProcessPool: the progress handler threw {e.GetType().Name}: {e.Message}");
        }
    }
}
