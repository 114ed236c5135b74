using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Enforces task timeouts and cancellation grace periods for one worker, with one timer (a <see cref="WatchTimer"/>, so
/// that deadlines hold when the application's thread pool is busy):
/// the timer is armed for the earliest moment a deadline could pass, and when it fires it reads the
/// worker's <see cref="ProgressCell"/> (which task runs, and whose arguments are being decoded, since when) and
/// either acts or re-arms.
/// A task past its timeout is cancelled through its token if its function takes one, and its worker is
/// killed if it is still running after the grace period (at once when it takes no token).
/// </summary>
internal sealed class TaskWatch : IDisposable
{
    private readonly WorkerConnection _worker;
    private readonly TimeSpan _grace;
    private readonly Lock _lock = new();
    private readonly WatchTimer _timer;
    // Tasks to kill if still running at KillAt: one task (a timeout), or with Index -1 any task of the chunk (a cancelled call).
    private readonly List<(TaskPosition Task, long KillAt, Func<long, Exception> Error)> _pendingStops = [];
    private readonly Dictionary<TaskPosition, Func<long, Exception>> _timedOut = [];
    private volatile int _timedOutCount;
    private long _due = long.MaxValue;
    private bool _disposed;

    public TaskWatch(WorkerConnection worker, TimeSpan grace)
    {
        _worker = worker;
        _grace = grace;
        _timer = new WatchTimer(static state => ((TaskWatch)state!).Check(), this);
    }

    /// <summary>A chunk with a timeout was sent: a task of it cannot pass its deadline before now + <paramref name="timeout"/>.</summary>
    public void OnTimedChunkSent(TimeSpan timeout) => ArmWithin(timeout);

    /// <summary>
    /// Kills the worker if task <paramref name="position"/> (with index -1: any task of its chunk) still runs
    /// after the grace period.
    /// </summary>
    public void StopAfterGrace(TaskPosition position, Func<long, Exception> error)
    {
        lock (_lock)
        {
            _pendingStops.Add((position, Stopwatch.GetTimestamp() + ToTicks(_grace), error));
        }

        ArmWithin(_grace);
    }

    /// <summary>Whether some task's timeout passed and its outcome has not arrived: read on every outcome, so no lock.</summary>
    public bool AnyTimedOut => _timedOutCount > 0;

    /// <summary>The error of a task cancelled because its timeout passed, for its outcome; else null.</summary>
    public Func<long, Exception>? TimedOut(TaskPosition position)
    {
        lock (_lock)
        {
            if (!_timedOut.Remove(position, out Func<long, Exception>? error))
            {
                return null;
            }

            _timedOutCount = _timedOut.Count;
            return error;
        }
    }

    /// <summary>
    /// The first task of chunk <paramref name="chunkId"/> from index <paramref name="from"/> up to
    /// <paramref name="to"/> (excluded) whose timeout passed, and its error, taken off the list; else null.
    /// </summary>
    public (int Index, Func<long, Exception> Error)? TakeTimedOut(int chunkId, int from, int to)
    {
        lock (_lock)
        {
            TaskPosition? first = null;
            foreach (TaskPosition position in _timedOut.Keys)
            {
                if (position.ChunkId == chunkId && position.Index >= from && position.Index < to && (first is null || position.Index < first.Value.Index))
                {
                    first = position;
                }
            }

            if (first is not { } found)
            {
                return null;
            }

            _timedOut.Remove(found, out Func<long, Exception>? error);
            _timedOutCount = _timedOut.Count;
            return (found.Index, error!);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }

        _timer.Dispose();
    }

    // A timer takes delays up to about 49.7 days, and any timeout or grace may be longer (TimeSpan.MaxValue too): the
    // timer is armed for at most this, and the check it runs re-arms it for the rest.
    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromDays(30);

    /// <summary>Stopwatch ticks in <paramref name="span"/>, saturated far below overflow, so deadlines can be added to now.</summary>
    internal static long ToTicks(TimeSpan span)
    {
        double ticks = span.TotalSeconds * Stopwatch.Frequency;
        return ticks >= long.MaxValue / 4 ? long.MaxValue / 4 : (long)ticks;
    }

    private void ArmWithin(TimeSpan delay)
    {
        long due = Stopwatch.GetTimestamp() + ToTicks(delay);
        lock (_lock)
        {
            if (_disposed || due >= _due)
            {
                return;
            }

            _due = due;
            _timer.Change(delay < TimeSpan.Zero ? TimeSpan.Zero : delay > MaxTimerDelay ? MaxTimerDelay : delay, Timeout.InfiniteTimeSpan);
        }
    }

    private void Check()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _due = long.MaxValue;
        }

        if (_worker.IsDead)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        ProgressCell cell = _worker.Transport.Cell;
        TaskPosition? running = cell.TryRead(out int chunkId, out int index, out long startedAt)
            ? new TaskPosition(chunkId, index)
            : null;
        // A task whose arguments the worker's reader is decoding (user code: a constructor, a serializer callback) is
        // the worker's too: its timeout and a cancellation's grace cover it.
        TaskPosition? decoding = cell.TryReadDecoding(out int decodingChunkId, out int decodingIndex, out long decodingSince)
            ? new TaskPosition(decodingChunkId, decodingIndex)
            : null;
        TimeSpan next = CheckPendingStops(running, decoding, now);
        next = Min(next, CheckDeadline(running, startedAt, now, Expire));
        next = Min(next, CheckDeadline(decoding, decodingSince, now, ExpireWhileDecoding));

        // A task out of sight (decoded and waiting behind another, between the worker's reader and its executor, or not
        // yet read) cannot pass its deadline before its chunk's send time plus its timeout; past that it may start with
        // little or none of its timeout left (its decoding counts), so the cell is read again soon until it is in sight
        // or done. (Re-arming for a whole timeout from now let such a task run on past its deadline to its end.)
        if (_worker.EarliestUnseenDeadline(running, decoding) is { } unseen)
        {
            TimeSpan until = Stopwatch.GetElapsedTime(now, unseen.Deadline);
            next = Min(next, until > TimeSpan.Zero ? until : Recheck(unseen.Timeout));
        }

        if (next != Timeout.InfiniteTimeSpan)
        {
            ArmWithin(next);
        }
    }

    /// <summary>
    /// Expires the task at <paramref name="position"/> (running, or having its arguments decoded since <paramref name="since"/>)
    /// if its timeout has passed; else returns how long until it does (infinite without a task or a timeout).
    /// </summary>
    private TimeSpan CheckDeadline(TaskPosition? position, long since, long now, Action<Chunk, TaskPosition, TimeSpan> expire)
    {
        if (position is not { } at || _worker.FindInFlight(at.ChunkId) is not { Job.TaskTimeout: { } timeout } chunk || chunk.Accounted > at.Index)
        {
            return Timeout.InfiniteTimeSpan;
        }

        TimeSpan elapsed = Stopwatch.GetElapsedTime(since, now);
        if (elapsed < timeout)
        {
            return timeout - elapsed;
        }

        expire(chunk, at, timeout);
        return Timeout.InfiniteTimeSpan;
    }

    private TimeSpan CheckPendingStops(TaskPosition? running, TaskPosition? decoding, long now)
    {
        TimeSpan next = Timeout.InfiniteTimeSpan;
        TaskStop? stop = null;
        lock (_lock)
        {
            for (int i = _pendingStops.Count - 1; i >= 0; i--)
            {
                (TaskPosition target, long killAt, Func<long, Exception> error) = _pendingStops[i];
                // Running it, or decoding its arguments: a reader stuck there reads no cancellation, so it too is stopped.
                TaskPosition? busy = IsTarget(running, target) ? running : IsTarget(decoding, target) ? decoding : null;
                bool isRunning = busy is not null;
                if (!isRunning && (target.Index >= 0 || now >= killAt || _worker.FindInFlight(target.ChunkId) is null))
                {
                    // Done, or (a cancelled chunk) not started by the end of the grace: the worker skips it.
                    _pendingStops.RemoveAt(i);
                }
                else if (isRunning && now >= killAt)
                {
                    _pendingStops.RemoveAt(i);
                    stop = new TaskStop(busy!.Value, error);
                }
                else
                {
                    next = Min(next, Stopwatch.GetElapsedTime(now, killAt));
                }
            }
        }

        if (stop is not null)
        {
            _worker.StopRunningTask(stop);
        }

        return next;
    }

    /// <summary>Whether <paramref name="position"/> is a task of <paramref name="target"/> (a task, or with index -1 a chunk) still owed.</summary>
    private bool IsTarget(TaskPosition? position, TaskPosition target) =>
        position is { } at && at.ChunkId == target.ChunkId && (target.Index < 0 || target.Index == at.Index) && _worker.IsUnfinished(at);

    /// <summary>
    /// The task's timeout passed while the worker was still decoding its arguments: its token cannot help (the task
    /// has not started, and the reader that would read the cancellation is the stuck thread), so the worker is killed.
    /// </summary>
    private void ExpireWhileDecoding(Chunk chunk, TaskPosition position, TimeSpan timeout)
    {
        int workerId = _worker.Id;
        int processId = _worker.ProcessId;
        string function = chunk.Job.Function.DisplayName;
        Func<long, Exception> error = index => new TaskTimeoutException(timeout, index, function, workerId, processId, killed: true, decoding: true);
        if (!MarkTimedOut(position, error))
        {
            return;
        }

        if (_worker.Transport.KillStopsRunningTask)
        {
            _worker.StopTakingWork();
        }

        if (_worker.Runtime.Logger is { } logger)
        {
            Log.TaskTimedOut(logger, chunk.FirstIndex + position.Index, function, workerId, processId, timeout, "its worker, still decoding its arguments, is killed and replaced");
        }

        _worker.StopRunningTask(new TaskStop(position, error));
    }

    /// <summary>
    /// From now on the task's outcome, if it still arrives, is its timeout: a worker being killed can finish the task
    /// and send its result before it dies (a kill is not instant), and the task ran past its deadline all the same.
    /// Marked before anything else is done (a logger can take its time), so that no result slips in between.
    /// </summary>
    private bool MarkTimedOut(TaskPosition position, Func<long, Exception> error)
    {
        lock (_lock)
        {
            if (!_timedOut.TryAdd(position, error))
            {
                return false;
            }

            _timedOutCount = _timedOut.Count;
            return true;
        }
    }

    private void Expire(Chunk chunk, TaskPosition position, TimeSpan timeout)
    {
        int workerId = _worker.Id;
        int processId = _worker.ProcessId;
        string function = chunk.Job.Function.DisplayName;
        Func<long, Exception> killed = index => new TaskTimeoutException(timeout, index, function, workerId, processId, killed: true);
        bool killable = _worker.Transport.KillStopsRunningTask;
        if (killable && (!chunk.Job.Function.TakesToken || _grace == TimeSpan.Zero))
        {
            if (!MarkTimedOut(position, killed))
            {
                return;
            }

            _worker.StopTakingWork();
            if (_worker.Runtime.Logger is { } logger)
            {
                Log.TaskTimedOut(logger, chunk.FirstIndex + position.Index, function, workerId, processId, timeout, "its worker is killed and replaced");
            }

            _worker.StopRunningTask(new TaskStop(position, killed));
            return;
        }

        if (!MarkTimedOut(position, index => new TaskTimeoutException(timeout, index, function, workerId, processId, killed: false, inProcess: !killable)))
        {
            return;
        }

        if (_worker.Runtime.Logger is { } log)
        {
            // In this process (InProcess) nothing can be killed: the task fails with its timeout when it ends.
            Log.TaskTimedOut(log, chunk.FirstIndex + position.Index, function, workerId, processId, timeout, killable
                ? "its token is cancelled; its worker is killed if it runs on after the grace period"
                : "its token, if it takes one, is cancelled; running in this process, it cannot be stopped and fails with the timeout when it ends");
        }

        _worker.Runtime.Dispatcher.Cancel(_worker, new CancelMessage(position.ChunkId, position.Index));
        StopAfterGrace(position, killed);
    }

    /// <summary>How soon to read the cell again while a task that may be due is out of sight: a sixteenth of its timeout, 1 to 100 ms.</summary>
    private static TimeSpan Recheck(TimeSpan timeout) =>
        TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 16, TimeSpan.TicksPerMillisecond, 100 * TimeSpan.TicksPerMillisecond));

    private static TimeSpan Min(TimeSpan a, TimeSpan b) =>
        a == Timeout.InfiniteTimeSpan ? b : b == Timeout.InfiniteTimeSpan ? a : a < b ? a : b;
}
