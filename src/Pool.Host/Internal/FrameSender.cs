using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Sends the frames the dispatcher writes for one worker. <see cref="Frames"/> is filled on the dispatcher's
/// thread. <see cref="Flush"/> writes it out there and then when the write cannot block: nothing is queued for
/// the sender's thread and all the worker holds unanswered fits in the pipe's buffer (small tasks: one write,
/// no thread hop). Otherwise it queues the buffer for this sender's own thread, which writes queued buffers in
/// order, and gives the dispatcher another one. Such a write blocks while the worker's pipe is full (a
/// megabyte argument goes out as fast as the worker reads it, a frozen worker's never); on its own thread it
/// holds up this worker only, so the dispatcher goes on filling the other workers' pipes. The thread starts
/// with the first buffer queued, so a pool that never sends much never has it.
/// </summary>
internal sealed class FrameSender : IDisposable
{
    // Written buffers kept for reuse; the worker's window bounds how many are queued at once.
    private const int KeepBuffers = 4;

    private readonly Stream _output;
    private readonly int _capacity;
    private readonly string _threadName;
    private readonly object _gate = new();
    private readonly Queue<FrameWriter> _queued = new();
    private readonly Stack<FrameWriter> _spare = new();
    private FrameWriter _filling = new(sendBlocks: true);
    private bool _threadStarted;
    // The thread is writing or has buffers queued: a flush must queue behind it to keep the order.
    private bool _busy;
    private bool _disposed;

    /// <param name="output">The worker's pipe.</param>
    /// <param name="capacity">How much a write to it surely takes without waiting for the worker to read.</param>
    /// <param name="threadName">The sender thread's name.</param>
    public FrameSender(Stream output, int capacity, string threadName)
    {
        _output = output;
        _capacity = capacity;
        _threadName = threadName;
    }

    /// <summary>Where the dispatcher writes frames; one writer at a time (another one after each <see cref="Flush"/> that queues).</summary>
    public FrameWriter Frames => _filling;

    /// <summary>Bytes written to <see cref="Frames"/> since the last <see cref="Flush"/>, the arrays sent as blocks included.</summary>
    public long Buffered => _filling.Length;

    /// <summary>
    /// Sends what was written to <see cref="Frames"/>, after what was queued before; <paramref name="unanswered"/>
    /// is what the worker was sent (these frames included) and has not answered, an upper bound of what its pipe
    /// holds. Never waits for the worker. A write that fails (the worker is gone) is dropped: the worker's read
    /// loop sees the end too.
    /// </summary>
    public void Flush(long unanswered)
    {
        if (_filling.Length == 0)
        {
            return;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                _filling.Reset();
                return;
            }

            if (_busy || Math.Max(unanswered, _filling.Length) > _capacity)
            {
                _queued.Enqueue(_filling);
                _filling = _spare.TryPop(out FrameWriter? spare) ? spare : new FrameWriter(sendBlocks: true);
                if (!_busy)
                {
                    _busy = true;
                    if (_threadStarted)
                    {
                        Monitor.Pulse(_gate);
                    }
                    else
                    {
                        _threadStarted = true;
                        new Thread(SendLoop) { IsBackground = true, Name = _threadName }.Start();
                    }
                }

                return;
            }
        }

        // Nothing is queued or being written, and only the dispatcher queues: this write keeps the order.
        WriteOut(_filling);
    }

    /// <summary>
    /// Stops the sender's thread once it has written what was queued. The buffers are left to the GC, not
    /// returned to the array pool: the dispatcher may be writing a chunk into one right now (it learns that the
    /// worker is gone when it adds the chunk).
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
        FrameWriter? written = null;
        while (true)
        {
            FrameWriter next;
            lock (_gate)
            {
                if (written is not null && _spare.Count < KeepBuffers)
                {
                    _spare.Push(written);
                }
                else
                {
                    written?.Dispose();
                }

                while (!_queued.TryDequeue(out next!))
                {
                    _busy = false;
                    if (_disposed)
                    {
                        return;
                    }

                    Monitor.Wait(_gate);
                }
            }

            WriteOut(next);
            written = next;
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
