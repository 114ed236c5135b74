namespace Pool.Worker;

/// <summary>
/// A count of wake-ups that one thread waits for without spinning first (a <see cref="SemaphoreSlim"/> spins before
/// it sleeps). The worker's idle thread waits here while the other runs a task: on two cores, a spinning idle thread
/// holds the core that the host's reader needs to take the task's result.
/// </summary>
internal sealed class Wakeups
{
    private readonly object _gate = new();
    private int _count;

    /// <summary>Adds a wake-up, waking the waiting thread if there is one.</summary>
    public void Release()
    {
        lock (_gate)
        {
            _count++;
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Waits until there is a wake-up, and takes it, or for at most <paramref name="milliseconds"/> (<see cref="Timeout.Infinite"/>: no limit).</summary>
    public void Wait(int milliseconds = Timeout.Infinite)
    {
        lock (_gate)
        {
            while (_count == 0)
            {
                if (!Monitor.Wait(_gate, milliseconds))
                {
                    return;
                }
            }

            _count--;
        }
    }
}
