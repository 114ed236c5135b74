using System.Diagnostics;

namespace Pool.Internal;

/// <summary>
/// Who reads a local worker's link, one thread at a time: the connection's reader thread, or the caller of a
/// synchronous <c>Apply</c> whose task was just written to it (issue 21). The reader thread reads only while it must
/// (<c>mustRead</c>: tasks in flight, the start-up, the worker's exit); otherwise it sleeps here, and a caller that
/// sent the one task may take the reading (<see cref="TryReserve"/>) and wait for its result in <c>recv</c> itself:
/// the worker's answer then wakes the thread that wants it, instead of the reader thread, which would wake the caller
/// (a second wake-up of a sleeping thread per call, as costly as a pipe crossing on some machines). Whoever reads
/// last and sees the link end says so here (<see cref="End"/>), and the reader thread settles the connection.
/// </summary>
internal sealed class ReadTurns(Func<bool> mustRead)
{
    // How long the reader thread spins before it sleeps, after a read. It pays for a caller that awaits each ApplyAsync
    // and submits the next one: 5,000 such calls took 155-170 ms with it, 272-318 ms without (the reader slept and was
    // woken per call). A Map of chunk size 1 no longer needs it (its window keeps the link busy): the same with or without.
    private static readonly long SpinTicks = Stopwatch.Frequency * 20 / 1_000_000;
    private readonly object _gate = new();
    private bool _taken;
    private bool _ended;
    private volatile bool _parked;

    /// <summary>How the link ended when a caller saw it end: an exception, or null at end of stream.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>
    /// The reader thread: waits until the reading is free and it must read, then takes it; false once the link ended
    /// (a caller saw it end: <see cref="Failure"/>).
    /// </summary>
    public bool AwaitReaderTurn()
    {
        // A link that was just read usually gets its next task within microseconds (a Map's dispatcher refilling it):
        // a short spin saves the sleep and the wake-up.
        long until = Stopwatch.GetTimestamp() + SpinTicks;
        var spinner = default(SpinWait);
        while (!_ended && !mustRead() && Stopwatch.GetTimestamp() < until)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        lock (_gate)
        {
            while (true)
            {
                if (_ended)
                {
                    return false;
                }

                // Parked before looking, so that a Nudge after a change this look misses sees it (Dekker's order).
                _parked = true;
                Interlocked.MemoryBarrier();
                if (!_taken && mustRead())
                {
                    _parked = false;
                    _taken = true;
                    return true;
                }

                Monitor.Wait(_gate);
            }
        }
    }

    /// <summary>The reader thread gives the reading back after a read.</summary>
    public void Release()
    {
        lock (_gate)
        {
            _taken = false;
        }
    }

    /// <summary>
    /// Something that makes the reader thread read has changed (a task went out, the worker exited): it is woken if it
    /// sleeps. Costs a fence and a read while it is reading.
    /// </summary>
    public void Nudge()
    {
        Interlocked.MemoryBarrier();
        if (_parked)
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>A caller takes the reading, when no one holds it; it must then <see cref="Return"/> it.</summary>
    public bool TryReserve()
    {
        lock (_gate)
        {
            if (_taken || _ended)
            {
                return false;
            }

            _taken = true;
            return true;
        }
    }

    /// <summary>A caller gives the reading back; the reader thread is woken if it must read on.</summary>
    public void Return()
    {
        lock (_gate)
        {
            _taken = false;
            if (_parked && mustRead())
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>Whoever read saw the link end, with <paramref name="failure"/> (null: end of stream): no one reads any more.</summary>
    public void End(Exception? failure)
    {
        lock (_gate)
        {
            if (!_ended)
            {
                _ended = true;
                Failure = failure;
            }

            _taken = false;
            Monitor.Pulse(_gate);
        }
    }
}
