using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The host's distrust of one worker's stream (<see cref="IFrameGuard"/>): a frame that has begun must be all here
/// within <see cref="StallLimit"/> (plus time for its length), or within the shortest task timeout of the chunks in
/// flight when that is sooner; and a block is read only while a task of the worker returns arrays of its element
/// type. Either failure is a protocol violation: the connection reports it and kills the worker. One timer, armed
/// only while a frame is in pieces, so whole frames cost nothing.
/// </summary>
internal sealed class LinkGuard : IFrameGuard, IDisposable
{
    /// <summary>How long a frame that has begun may take to arrive, beyond <see cref="StallBytesPerSecond"/>.</summary>
    public static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(10);

    /// <summary>The slowest pace a frame is allowed on top of <see cref="StallLimit"/>: a 1 GiB frame gets 32 s more.</summary>
    public const long StallBytesPerSecond = 32L << 20;

    private readonly WorkerConnection _worker;
    private readonly ITimer _timer;
    private long _startedAt;
    private long _deadline;
    private long _length;
    private bool _disposed;
    private readonly Lock _lock = new();

    public LinkGuard(WorkerConnection worker)
    {
        _worker = worker;
        _timer = TimeProvider.System.CreateTimer(static state => ((LinkGuard)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public void OnFrameStarted(long length)
    {
        TimeSpan limit = StallLimit + TimeSpan.FromSeconds((double)Math.Max(0, length) / StallBytesPerSecond);
        if (_worker.ShortestTimeoutInFlight() is { } timeout && timeout < limit)
        {
            limit = timeout;
        }

        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _startedAt = now;
            _length = length;
            _deadline = now + (long)(limit.TotalSeconds * Stopwatch.Frequency);
            _timer.Change(limit, Timeout.InfiniteTimeSpan);
        }
    }

    public void OnFrameCompleted()
    {
        lock (_lock)
        {
            _startedAt = 0;
            if (!_disposed)
            {
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    public void CheckBlock(byte code, int length)
    {
        if (!_worker.ExpectsBlock(code))
        {
            throw new ProtocolException(
                $"it sent an array block of {length} bytes (element type code {code}) while none of its tasks returns an array of that type");
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

    private void Check()
    {
        long startedAt;
        long length;
        lock (_lock)
        {
            if (_disposed || _startedAt == 0)
            {
                return;
            }

            long now = Stopwatch.GetTimestamp();
            if (now < _deadline)
            {
                // Re-armed for a later frame between the timer's firing and this check.
                _timer.Change(Stopwatch.GetElapsedTime(now, _deadline), Timeout.InfiniteTimeSpan);
                return;
            }

            startedAt = _startedAt;
            length = _length;
        }

        string size = length >= 0 ? $"a frame of {length} bytes" : "a frame";
        _worker.OnViolation(new ProtocolException(
            $"{size} it began {Stopwatch.GetElapsedTime(startedAt).TotalSeconds:0.#} s ago never arrived whole while the worker was alive"));
    }
}
