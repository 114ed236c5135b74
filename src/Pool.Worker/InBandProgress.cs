using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// A worker on another machine, whose host cannot map its <see cref="ProgressCell"/>: a thread reads the cell every
/// <see cref="SampleInterval"/> and sends what changed as a <see cref="ProgressMessage"/>, and sends it anyway every
/// <see cref="HeartbeatInterval"/>, which tells the host that the worker and its node are alive. The executor pays
/// nothing per task but a null check, except after a task the host was told of: before the next one starts, the host
/// hears (on the executor's thread, <see cref="ProgressCell.BeforeChange"/>) that it ended, so a crash of the next task
/// is never blamed on it. A task that crashes within a sample of starting, after a short one, is unknown to the host:
/// its chunk is then retried as when a local worker dies between tasks.
/// </summary>
internal sealed class InBandProgress : IDisposable
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(20);

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    private readonly ProgressCell _cell;
    private readonly ResultWriter _output;
    private readonly FrameWriter _frames = new(256);
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _thread;
    private long _reported = long.MinValue;
    private long _reportedDecoding = long.MinValue;
    private long _sentAt;

    // The task the executor reported over, which the cell may still show for a moment: never reported as running again.
    private long _ended = ProgressCell.Idle;

    public InBandProgress(ProgressCell cell, ResultWriter output)
    {
        _cell = cell;
        _output = output;
        _thread = new Thread(Run) { IsBackground = true, Name = "pool-worker-progress" };
        cell.BeforeChange = OnBeforeChange;
    }

    public void Start() => _thread.Start();

    public void Dispose()
    {
        _cell.BeforeChange = null;
        _stop.Set();
    }

    private void Run()
    {
        try
        {
            while (!_stop.Wait(SampleInterval))
            {
                lock (_gate)
                {
                    long position = _cell.Peek(out long startedAt);
                    if (position == _ended)
                    {
                        position = ProgressCell.Idle;
                    }

                    if (position != _reported || _cell.PeekDecoding(out _) != _reportedDecoding || Stopwatch.GetElapsedTime(_sentAt) >= HeartbeatInterval)
                    {
                        Send(position, startedAt);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The link is gone: the reader sees it too, and the worker exits.
        }
    }

    private void OnBeforeChange(long position)
    {
        if (position != ProgressCell.Idle && Volatile.Read(ref _reported) == position)
        {
            try
            {
                lock (_gate)
                {
                    _ended = position;
                    Send(ProgressCell.Idle, 0);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
            {
                // As above: the link is gone.
            }
        }
    }

    private static long Elapsed(long position, long since, long now) =>
        position == ProgressCell.Idle || since <= 0 || since > now ? 0 : (long)Stopwatch.GetElapsedTime(since, now).TotalMicroseconds;

    /// <summary>Sends the cell's value; under <see cref="_gate"/>.</summary>
    private void Send(long position, long startedAt)
    {
        long now = Stopwatch.GetTimestamp();
        long decoding = _cell.PeekDecoding(out long decodingSince);
        new ProgressMessage(position, Elapsed(position, startedAt, now), decoding, Elapsed(decoding, decodingSince, now)).Write(_frames);
        _reportedDecoding = decoding;
        _output.WriteAside(_frames);
        Volatile.Write(ref _reported, position);
        _sentAt = now;
    }
}
