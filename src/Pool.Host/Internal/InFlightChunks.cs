using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The chunks one worker holds without all their outcomes, and what follows from them: how many bytes are unanswered
/// (the sender's flow control), how many more tasks the worker may take (<see cref="ProcessPoolOptions.MaxTasksPerWorker"/>),
/// and how deep its window is, sized from how long its chunks take: about a millisecond of queued work beyond the running
/// chunk, so that it never waits for a round trip; tiny chunks get a deep window, long ones a window of two. One lock,
/// shared by the dispatcher (which adds) and the reader (which counts outcomes); once closed (the worker is gone) it takes nothing.
/// </summary>
internal sealed class InFlightChunks(int quota, int minWindow)
{
    // Tasks of a few microseconds fill a millisecond with hundreds of chunks. With 128, a Map of chunk size 1 ran its
    // workers dry while the dispatcher waited for a core to be woken on (1.2-1.4 M against 0.8-0.95 M tasks/s, in turns);
    // 1,024 gave no more.
    private const int MaxWindow = 512;

    // A pipe buffer's worth (the dispatcher flushes at 1 MiB, the pipe holds twice that): enough to keep a worker busy
    // between refills, little enough that arguments do not wait in its heap. 3 MiB measured the same.
    private const long MaxQueuedBytes = 2 << 20;
    private static readonly double TargetQueuedTicks = Stopwatch.Frequency / 1000.0;

    private readonly Lock _lock = new();
    private readonly List<Chunk> _chunks = [];
    private volatile bool _closed;
    private volatile bool _retiring;
    private int _quota = quota;
    private readonly int _minWindow = minWindow;
    private volatile int _window = minWindow;
    private int _count;
    private long _bytes;
    private long _lastCompletion;
    private double _serviceTicks = -1;

    public bool IsClosed => _closed;

    /// <summary>The worker served its quota of tasks and takes no more.</summary>
    public bool IsRetiring => _retiring;

    public int Quota => Volatile.Read(ref _quota);

    public int Count => Volatile.Read(ref _count);

    /// <summary>The bytes of the chunks held: what the worker may not have read yet.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>
    /// Room for one more chunk: fewer than the window, and, beyond the least window (two chunks, or the worker's
    /// concurrency and one), fewer than <see cref="MaxQueuedBytes"/> held. Large arguments read ahead of their task are allocated as the worker reads them and outlive its gen0
    /// collections, which copy each of them as they promote it: with five 1 MiB chunks held, the GC's copying and
    /// the page faults of fresh memory took a worker more time than its reads (W4 one way, 200 MiB in 68-73 ms;
    /// with 2 MiB held, 24-28 ms, the raw pipe's rate).
    /// </summary>
    public bool HasRoom
    {
        get
        {
            int count = Volatile.Read(ref _count);
            return !_closed && !_retiring && count < _window && (count < _minWindow || Volatile.Read(ref _bytes) < MaxQueuedBytes);
        }
    }

    /// <summary>
    /// Whether the worker is down to half its window (or to its concurrency): the moment to refill it. A deep window is
    /// refilled in one pass of the dispatcher rather than one chunk per outcome, which woke the dispatcher for every
    /// tiny chunk; a window of two is refilled as each chunk is done, as before.
    /// </summary>
    public bool IsLow => Volatile.Read(ref _count) <= Math.Max(_window / 2, _minWindow - 1);

    /// <summary>The chunk is now the worker's; false once closed.</summary>
    public bool TryAdd(Chunk chunk)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            chunk.SentAt = Stopwatch.GetTimestamp();
            _chunks.Add(chunk);
            _count++;
            _bytes += chunk.Bytes;
            _quota -= chunk.Count;
            if (_quota <= 0)
            {
                // It takes no more work, and is closed once its last chunk is done.
                _retiring = true;
            }
        }

        return true;
    }

    /// <summary>The chunk held with this id, or null.</summary>
    public Chunk? Find(int chunkId)
    {
        lock (_lock)
        {
            // A loop, not List.Find: no closure on the path of every outcome frame.
            foreach (Chunk chunk in _chunks)
            {
                if (chunk.Id == chunkId)
                {
                    return chunk;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The chunk an outcome frame of tasks <paramref name="offset"/>..+<paramref name="count"/> names, which must be
    /// held and owe exactly those next.
    /// </summary>
    /// <exception cref="ProtocolException">The worker reported what it does not owe.</exception>
    public Chunk Expect(int chunkId, int offset, int count)
    {
        Chunk chunk = Find(chunkId) ?? throw new ProtocolException($"it reported chunk {chunkId}, which it does not hold");
        return offset == chunk.Accounted && count > 0 && offset + count <= chunk.Count
            ? chunk
            : throw new ProtocolException($"it reported tasks {offset}..{offset + count - 1} of chunk {chunkId}, which expects task {chunk.Accounted} next of {chunk.Count}");
    }

    /// <summary>
    /// The earliest moment a task of a timed chunk held could pass its deadline, among the tasks out of sight: not done,
    /// and neither <paramref name="running"/> nor <paramref name="decoding"/> (decoded and waiting for their turn, or
    /// between the worker's reader and its executor, or not yet read). A task's clock starts when its arguments begin to
    /// decode, which is after its chunk was sent: so that moment is the chunk's send time plus its timeout (Stopwatch
    /// ticks), given with that timeout; null if no such task.
    /// </summary>
    public (long Deadline, TimeSpan Timeout)? EarliestUnseenDeadline(TaskPosition? running, TaskPosition? decoding)
    {
        (long Deadline, TimeSpan Timeout)? earliest = null;
        lock (_lock)
        {
            foreach (Chunk chunk in _chunks)
            {
                if (chunk.Job.TaskTimeout is not { } timeout)
                {
                    continue;
                }

                int inSight = InSight(chunk, running) + (decoding != running ? InSight(chunk, decoding) : 0);
                if (chunk.Count - chunk.Accounted <= inSight)
                {
                    continue;
                }

                long deadline = chunk.SentAt + TaskWatch.ToTicks(timeout);
                if (earliest is null || deadline < earliest.Value.Deadline)
                {
                    earliest = (deadline, timeout);
                }
            }
        }

        return earliest;

        static int InSight(Chunk chunk, TaskPosition? position) =>
            position is { } at && at.ChunkId == chunk.Id && at.Index >= chunk.Accounted ? 1 : 0;
    }

    /// <summary>The shortest task timeout of the chunks held; null if none has one.</summary>
    public TimeSpan? ShortestTimeout()
    {
        TimeSpan? shortest = null;
        lock (_lock)
        {
            foreach (Chunk chunk in _chunks)
            {
                if (chunk.Job.TaskTimeout is { } timeout && (shortest is null || timeout < shortest))
                {
                    shortest = timeout;
                }
            }
        }

        return shortest;
    }

    /// <summary>The ids of the chunks of <paramref name="job"/> held; none once closed.</summary>
    public int[] IdsOf(Job job)
    {
        lock (_lock)
        {
            return _closed ? [] : [.. _chunks.Where(c => c.Job == job).Select(c => c.Id)];
        }
    }

    /// <summary>Whether a chunk held returns arrays whose elements have block code <paramref name="code"/>.</summary>
    public bool ExpectsBlock(byte code)
    {
        lock (_lock)
        {
            foreach (Chunk chunk in _chunks)
            {
                if (chunk.Job.ResultBlockCode == code)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// Counts <paramref name="count"/> outcomes of <paramref name="chunk"/>. When that completes it, the chunk is let go,
    /// the window resized, and <paramref name="service"/> is how long it took here (in <see cref="Stopwatch"/> ticks);
    /// <paramref name="retire"/> says the worker is retiring and now holds nothing.
    /// </summary>
    /// <returns>Whether the chunk is complete.</returns>
    public bool Account(Chunk chunk, int count, out long service, out bool retire)
    {
        lock (_lock)
        {
            chunk.Accounted += count;
            if (chunk.Accounted < chunk.Count)
            {
                service = 0;
                retire = false;
                return false;
            }

            _chunks.Remove(chunk);
            _count--;
            _bytes -= chunk.Bytes;
            long now = Stopwatch.GetTimestamp();
            service = Math.Max(1, now - Math.Max(_lastCompletion, chunk.SentAt));
            _lastCompletion = now;
            _serviceTicks = _serviceTicks < 0 ? service : (0.8 * _serviceTicks) + (0.2 * service);
            _window = (int)Math.Clamp(1 + Math.Ceiling(TargetQueuedTicks / _serviceTicks), _minWindow, Math.Max(MaxWindow, _minWindow));
            retire = _retiring && _count == 0;
            return true;
        }
    }

    /// <summary>The worker is gone: takes nothing more, and hands over what it held.</summary>
    public Chunk[] Close()
    {
        lock (_lock)
        {
            _closed = true;
            Chunk[] held = [.. _chunks];
            _chunks.Clear();
            _count = 0;
            _bytes = 0;
            return held;
        }
    }
}
