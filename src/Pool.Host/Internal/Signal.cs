using System.Threading.Channels;

namespace Pool.Internal;

/// <summary>
/// An auto-reset event for one waiter: <see cref="Set"/> is sticky until the next wait, so a
/// wake-up is never lost between checking for work and waiting for it. A bounded channel of one slot
/// that drops extra writes does exactly this, and waits without allocating. The waiter waits asynchronously
/// (<see cref="WaitAsync"/>: the wake-up is a thread-pool work item) or blocks its own thread (<see cref="Wait"/>: the
/// wake-up is a pulse, and needs no other thread, so a blocking Imap makes progress however busy the thread pool is).
/// </summary>
internal sealed class Signal
{
    private readonly Channel<bool> _channel = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
        AllowSynchronousContinuations = false,
    });

    // An object, not a Lock: Monitor.Wait needs the monitor of the object locked.
    private readonly object _gate = new();
    private int _blockedWaiters;

    public void Set()
    {
        _channel.Writer.TryWrite(true);
        // A full fence, as the waiter's Increment is one: either this read sees the waiter, or its last TryRead sees the write.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _blockedWaiters) != 0)
        {
            Pulse();
        }
    }

    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken = default) => _channel.Reader.ReadAsync(cancellationToken);

    /// <summary>Blocks until <see cref="Set"/> (or returns at once if it was set since the last wait).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public void Wait(CancellationToken cancellationToken = default)
    {
        if (_channel.Reader.TryRead(out _))
        {
            return;
        }

        CancellationTokenRegistration registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static state => ((Signal)state!).Pulse(), this)
            : default;
        try
        {
            lock (_gate)
            {
                // Announced before the last check: a Set after it sees the waiter and pulses, which waits for this lock.
                Interlocked.Increment(ref _blockedWaiters);
                try
                {
                    while (!_channel.Reader.TryRead(out _))
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        Monitor.Wait(_gate);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _blockedWaiters);
                }
            }
        }
        finally
        {
            registration.Dispose();
        }
    }

    private void Pulse()
    {
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }
}
