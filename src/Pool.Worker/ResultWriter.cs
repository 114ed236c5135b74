using System.Buffers;
using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker's only way out: results are appended to one open <see cref="MessageType.Results"/> frame
/// while they belong to consecutive tasks of one chunk, and the buffer goes to the pipe in one write when
/// the worker runs out of queued work, when it has held results for a millisecond, or when it is large.
/// Tiny tasks thus cost a few bytes each and no system call; long tasks report one by one.
/// </summary>
internal sealed class ResultWriter(Stream output) : IDisposable
{
    private const int FlushAtBytes = 256 * 1024;
    private static readonly long FlushAfterTicks = Stopwatch.Frequency / 1000;
    private static readonly long FastTaskTicks = Stopwatch.Frequency / 20_000;

    private readonly FrameWriter _frames = new(sendBlocks: true);
    private readonly HashSet<object> _checkedCodecs = [];
    private readonly Lock _lock = new();

    // Held while bytes go to the stream: the results' flush and the progress reporter's frames never interleave.
    private readonly Lock _writeLock = new();
    private int _openChunk = -1;
    private int _openStart;
    private int _openOffset;
    private int _openCount;
    private int _countPosition;
    private long _lastFlush = Stopwatch.GetTimestamp();
    private long _lastCheck = Stopwatch.GetTimestamp();
    private int _checkEvery = 1;
    private int _sinceCheck;

    /// <summary>Held while a task's outcome is written, when several tasks run at once.</summary>
    public Lock Sync => _lock;

    /// <summary>Appends the value of task <paramref name="index"/>; if it fails to encode, reports that error instead.</summary>
    public void WriteResult<T>(int chunkId, int index, Codec<T> codec, T value)
    {
        OpenResults(chunkId, index);
        if (codec is RawCodec<T>)
        {
            // A number (the common tiny task): its bytes, with no virtual call and nothing that can fail.
            _frames.WriteRaw(value);
            _openCount++;
            return;
        }

        int position = _frames.Position;
        try
        {
            codec.Write(_frames, value);
        }
        catch (Exception e)
        {
            // Any exception from the serializer is this task's error, reported like the function's own.
            _frames.Truncate(position);
            WriteFailure(chunkId, index, 1, FailureKind.Error, ResultEncodingError(value, e));
            return;
        }

        if (_frames.Position - _openStart - 4 > Framing.MaxFrameLength)
        {
            // Found only when the frame was ended, at the flush, this failed the worker's executor: the worker exited, and
            // the task, blamed on none of the workers, ran on two more that died the same way before it failed as a crash.
            long size = _frames.Position - position;
            _frames.Truncate(position);
            WriteFailure(chunkId, index, 1, FailureKind.Error, RemoteError.FromException(new InvalidOperationException(
                $"The function returned a {TypeFacts.Describe(value?.GetType() ?? typeof(T))} whose encoding takes {size} bytes: a result may take at most " +
                $"{Framing.MaxFrameLength} bytes (1 GiB; an array of numbers travels as its raw bytes). Return it in parts, or write it to a file and return the path.")));
            return;
        }

        if (codec.CanFail && value is not null && _checkedCodecs.Add(codec) && CheckArrival(codec, value, _frames.WrittenSince(position)) is { } different)
        {
            _frames.Truncate(position);
            WriteFailure(chunkId, index, 1, FailureKind.Error, different);
            return;
        }

        _openCount++;
    }

    /// <summary>
    /// The first result of each type that goes through the serializer is read back from the bytes just written,
    /// as the host will read it, and compared with what the function returned (see <see cref="Fidelity"/>): a
    /// derived object returned as its base type, or private state, fails the task, saying where, instead of
    /// arriving different. The value is not written a second time (a lazy sequence is not run again). As with
    /// arguments, later results are not compared.
    /// </summary>
    private static RemoteError? CheckArrival<T>(Codec<T> codec, T value, ReadOnlyMemory<byte> written)
    {
        try
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(written));
            T copy = codec.Read(ref reader);
            if (Fidelity.Find(value, copy, typeof(T), codec.Serializer!) is not { } difference)
            {
                return null;
            }

            return RemoteError.FromException(new InvalidOperationException(
                $"The function returned a {TypeFacts.Describe(value!.GetType())} that would not arrive in the host as it is with " +
                $"{codec.Serializer!.GetType().Name}: {difference.Text("the host")}. {Fidelity.HowToKeep(difference, codec.Serializer!, "the host")}"));
        }
        catch (Exception e)
        {
            // The bytes were written: it is reading them back, as the host would, that failed.
            return RemoteError.FromException(new InvalidOperationException(
                $"The function returned a {value?.GetType().FullName ?? typeof(T).FullName} that the pool's serializer encoded but could not decode " +
                $"as {TypeFacts.Describe(typeof(T))} (as the host would read it): " +
                (ValueAdvice.For(typeof(T), value, "The function's return type") is { } advice
                    ? $"{advice} (the serializer said: {ValueAdvice.Innermost(e).Message})"
                    : $"{e.Message} Return plain data the serializer reads back (concrete types with public properties or constructor parameters, " +
                      "not interfaces or abstract types), or set a serializer that handles this type."),
                e));
        }
    }

    /// <summary>How many tasks may run before <see cref="AfterTasks"/> wants to look at the clock (at least one).</summary>
    public int TasksUntilCheck => Math.Max(1, _checkEvery - _sinceCheck);

    /// <summary>
    /// Room for the raw results of tasks from <paramref name="index"/> on, in the open results frame: the
    /// caller writes up to <paramref name="bytes"/> bytes there and says how many with <see cref="CommitRaw"/>,
    /// writing nothing else in between.
    /// </summary>
    public Span<byte> ReserveRaw(int chunkId, int index, int bytes)
    {
        OpenResults(chunkId, index);
        return _frames.GetSpan(bytes)[..bytes];
    }

    /// <summary>The first <paramref name="count"/> results in the room <see cref="ReserveRaw"/> gave, <paramref name="bytes"/> bytes in all.</summary>
    public void CommitRaw(int count, int bytes)
    {
        _frames.Advance(bytes);
        _openCount += count;
    }

    public void WriteFailure(int chunkId, int offset, int count, FailureKind kind, RemoteError? error)
    {
        CloseResults();
        new FailedMessage(chunkId, offset, count, kind, error).Write(_frames);
    }

    /// <summary>Writes a whole frame made by <paramref name="write"/> (control replies).</summary>
    public void WriteFrame(Action<FrameWriter> write)
    {
        CloseResults();
        write(_frames);
    }

    /// <summary>Called after each task: flushes when results have waited a millisecond or pile up.
    /// The clock is read every task while tasks are slow and ever more rarely while they are tiny.</summary>
    public void AfterTask() => AfterTasks(1);

    /// <summary>As <see cref="AfterTask"/>, after <paramref name="count"/> tasks.</summary>
    public void AfterTasks(int count)
    {
        // A result sent as a block is the function's own array: it goes out now, before the function can change it.
        if (_frames.Length >= FlushAtBytes || _frames.HasBlocks)
        {
            Flush();
            return;
        }

        _sinceCheck += count;
        if (_sinceCheck < _checkEvery)
        {
            return;
        }

        _sinceCheck = 0;
        long now = Stopwatch.GetTimestamp();
        _checkEvery = now - _lastCheck < FastTaskTicks ? Math.Min(_checkEvery * 2, 256) : 1;
        _lastCheck = now;
        if (now - _lastFlush >= FlushAfterTicks)
        {
            Flush();
        }
    }

    public void Flush()
    {
        CloseResults();
        if (_frames.Position > 0)
        {
            lock (_writeLock)
            {
                _frames.WriteTo(output);
                output.Flush();
            }

            _frames.Reset();
        }

        _lastFlush = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// Another thread's frames (<see cref="InBandProgress"/>), written now and whole, between two of this writer's
    /// writes; <paramref name="frames"/> is reset.
    /// </summary>
    public void WriteAside(FrameWriter frames)
    {
        lock (_writeLock)
        {
            frames.WriteTo(output);
            output.Flush();
        }

        frames.Reset();
    }

    public void Dispose() => _frames.Dispose();

    private static RemoteError ResultEncodingError<T>(T value, Exception e) => RemoteError.FromException(new InvalidOperationException(
        $"The function returned a {value?.GetType().FullName ?? typeof(T).FullName} that the pool's serializer could not encode: " +
        (ValueAdvice.For(typeof(T), value, "The function's return type") is { } advice
            ? $"{advice} (the serializer said: {ValueAdvice.Innermost(e).Message})"
            : $"{e.Message} Return plain data (numbers, strings, arrays, records with public properties), or set a serializer that handles this type."),
        e));

    /// <summary>Makes the open results frame the one of task <paramref name="index"/> of <paramref name="chunkId"/>.</summary>
    private void OpenResults(int chunkId, int index)
    {
        if (_openChunk == chunkId && _openOffset + _openCount == index)
        {
            return;
        }

        CloseResults();
        _openStart = _frames.Position;
        _frames.BeginFrame(MessageType.Results);
        _frames.WriteInt32(chunkId);
        _frames.WriteInt32(index);
        _countPosition = _frames.ReserveInt32();
        _openChunk = chunkId;
        _openOffset = index;
        _openCount = 0;
    }

    private void CloseResults()
    {
        if (_openChunk < 0)
        {
            return;
        }

        if (_openCount == 0)
        {
            _frames.AbandonFrame();
        }
        else
        {
            _frames.PatchInt32(_countPosition, _openCount);
            _frames.EndFrame();
        }

        _openChunk = -1;
    }
}
