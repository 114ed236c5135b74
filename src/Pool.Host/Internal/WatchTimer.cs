using System.Diagnostics;

namespace Pool.Internal;

/// <summary>
/// A one-shot timer whose callback runs on one dedicated thread of the process (<c>pool-watch</c>), never on the thread
/// pool: the pool's deadlines (task timeouts, cancellation grace, an initializer's StartTimeout) must act on time when the application
/// holds every thread-pool thread. A <see cref="System.Threading.Timer"/> queues its callback to the thread pool, which
/// then grows by about a thread a second: a timeout was enforced up to a second late, and a task past its deadline
/// could end and deliver its result first. Callbacks must be short and must not block: they share the thread.
/// </summary>
internal sealed class WatchTimer : ITimer
{
    private static readonly object Gate = new();
    private static readonly PriorityQueue<WatchTimer, long> Queue = new();
    private static Thread? _thread;
    // The moment the thread sleeps until (Stopwatch ticks; long.MaxValue: until pulsed): it is woken only for a sooner one.
    private static long _sleepsUntil = long.MaxValue;

    private readonly Action<object?> _callback;
    private readonly object? _state;
    private bool _queued;
    private bool _disposed;

    public WatchTimer(Action<object?> callback, object? state)
    {
        _callback = callback;
        _state = state;
    }

    /// <summary>Runs the callback once, <paramref name="dueTime"/> from now, replacing any earlier arming; infinite disarms.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A period other than infinite: these timers fire once.</exception>
    public bool Change(TimeSpan dueTime, TimeSpan period)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(period, Timeout.InfiniteTimeSpan);
        long due = dueTime == Timeout.InfiniteTimeSpan ? long.MaxValue : Stopwatch.GetTimestamp() + TaskWatch.ToTicks(dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
        lock (Gate)
        {
            if (_disposed)
            {
                return false;
            }

            Unqueue();
            if (due != long.MaxValue)
            {
                Queue.Enqueue(this, due);
                _queued = true;
                if (_thread is null)
                {
                    _thread = new Thread(Run) { IsBackground = true, Name = "pool-watch" };
                    _thread.Start();
                }
                else if (due < _sleepsUntil)
                {
                    Monitor.Pulse(Gate);
                }
            }
        }

        return true;
    }

    public void Dispose()
    {
        lock (Gate)
        {
            _disposed = true;
            Unqueue();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Unqueue()
    {
        if (_queued)
        {
            Queue.Remove(this, out _, out _, ReferenceEqualityComparer.Instance);
            _queued = false;
        }
    }

    private static void Run()
    {
        while (true)
        {
            WatchTimer due;
            lock (Gate)
            {
                while (true)
                {
                    if (!Queue.TryPeek(out due!, out long at))
                    {
                        _sleepsUntil = long.MaxValue;
                        Monitor.Wait(Gate);
                        continue;
                    }

                    long wait = at - Stopwatch.GetTimestamp();
                    if (wait <= 0)
                    {
                        Queue.Dequeue();
                        due._queued = false;
                        break;
                    }

                    // Rounded up: waking a millisecond early would only spin.
                    _sleepsUntil = at;
                    Monitor.Wait(Gate, (int)Math.Min(int.MaxValue, (wait * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency));
                }
            }

            // Outside the lock: a callback arms timers (its own too). One that throws ends the process, as a Timer's does.
            due._callback(due._state);
        }
    }
}
