using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Sends the frames the dispatcher writes for one worker. <see cref="Frames"/> is filled on the dispatcher's
/// thread. <see cref="Flush"/> writes it out there and then when the write cannot block: when all the worker
/// holds unanswered fits in the pipe's buffer (small tasks: one write, no thread hop). Otherwise it hands
/// the buffer to this sender's own thread and swaps in a second one. Such a write blocks while the worker's
/// pipe is full (a megabyte argument goes out as fast as the worker reads it, a frozen worker's never); on its
/// own thread it holds up this worker only, so the dispatcher goes on filling the other workers' pipes. The
/// thread starts with the first write handed to it, so a pool that never sends much never has it.
/// </summary>
internal sealed class FrameSender : IDisposable
{
    private readonly Stream _output;
    private readonly int _capacity;
    private readonly Action _onIdle;
    private readonly string _threadName;
    private readonly object _gate = new();
    private FrameWriter _filling = new(sendBlocks: true);
    private FrameWriter _sending = new(sendBlocks: true);
    private bool _threadStarted;
    private bool _busy;
    private bool _flushWanted;
    private bool _disposed;

    /// <param name="output">The worker's pipe.</param>
    /// <param name="capacity">How much a write to it surely takes without waiting for the worker to read.</param>
    /// <param name="onIdle">Called (on the sender's thread) when its write ends after a <see cref="Flush"/> found it busy.</param>
    /// <param name="threadName">The sender thread's name.</param>
    public FrameSender(Stream output, int capacity, Action onIdle, string threadName)
    {
        _output = output;
        _capacity = capacity;
        _onIdle = onIdle;
        _threadName = threadName;
    }

    /// <summary>Where the dispatcher writes frames; one writer at a time (it is swapped by <see cref="Flush"/>).</summary>
    public FrameWriter Frames => _filling;

    /// <summary>Bytes written to <see cref="Frames"/> and not yet handed to a write, the arrays sent as blocks included.</summary>
    public long Buffered => _filling.Length;

    /// <summary>
    /// Sends what was written to <see cref="Frames"/>; <paramref name="unanswered"/> is what the worker was sent
    /// (these frames included) and has not answered, an upper bound of what its pipe holds. Returns
    /// <see langword="false"/> when an earlier write is still going on the sender's thread: the frames stay
    /// buffered (they go after it), and <c>onIdle</c> is called when it ends, for the caller to flush again. A
    /// write that fails (the worker is gone) is dropped: the worker's read loop sees the end too.
    /// </summary>
    public bool Flush(long unanswered)
    {
        if (_filling.Length == 0)
        {
            return true;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                _filling.Reset();
                return true;
            }

            if (_busy)
            {
                _flushWanted = true;
                return false;
            }

            if (Math.Max(unanswered, _filling.Length) > _capacity)
            {
                (_filling, _sending) = (_sending, _filling);
                _busy = true;
                if (!_threadStarted)
                {
                    _threadStarted = true;
                    new Thread(SendLoop) { IsBackground = true, Name = _threadName }.Start();
                }
                else
                {
                    Monitor.Pulse(_gate);
                }

                return true;
            }
        }

        WriteOut(_filling);
        return true;
    }

    /// <summary>
    /// Stops the sender's thread. The buffers are left to the GC, not returned to the array pool: the dispatcher
    /// may be writing a chunk into one right now (it learns that the worker is gone when it adds the chunk).
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            Monitor.Pulse(_gate);
        }
    }

    private void SendLoop()
    {
        while (true)
        {
            lock (_gate)
            {
                while (!_busy)
                {
                    if (_disposed)
                    {
                        return;
                    }

                    Monitor.Wait(_gate);
                }
            }

            WriteOut(_sending);
            bool wake;
            lock (_gate)
            {
                _busy = false;
                wake = _flushWanted;
                _flushWanted = false;
            }

            if (wake)
            {
                _onIdle();
            }
        }
    }

    private void WriteOut(FrameWriter frames)
    {
        try
        {
            frames.WriteTo(_output);
            _output.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The worker is gone; its read loop sees it too and settles the chunks it held.
        }
        finally
        {
            frames.Reset();
        }
    }
}
