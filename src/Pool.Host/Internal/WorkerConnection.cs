using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The protocol with one worker. The dispatcher writes frames (<see cref="Write"/>, <see cref="Flush"/>);
/// the read loop routes each outcome frame to its chunk's job and frees room when a chunk is done. Every way
/// the connection can end (end of stream, broken pipe, protocol error, process exit) goes through one
/// <see cref="TakeLoss"/>, which takes the chunks still in flight and completes <see cref="Lost"/>.
/// </summary>
internal sealed class WorkerConnection : IDisposable
{
    // The shallowest window (see InFlightChunks): the running chunk and one queued.
    private const int MinWindow = 2;

    // An Init frame up to this size is sent before the worker says Ready (see HandshakeAsync).
    private const int EarlyInitLimit = 64 * 1024;

    /// <summary>
    /// How long a worker on another machine may send nothing before it is given up as lost: it sends its progress at
    /// least every second (<see cref="ProgressMessage"/>), so this is five missed heartbeats.
    /// </summary>
    public static readonly TimeSpan SilenceLimit = TimeSpan.FromSeconds(5);

    private readonly IWorkerTransport _transport;
    private readonly PoolRuntime _runtime;
    private readonly FrameSender _sender;
    private readonly HashSet<int> _bound = [];
    private readonly InFlightChunks _inFlight;
    // Continuations run on the reader thread that completes it (see TakeLoss).
    private readonly TaskCompletionSource<WorkerLoss> _lost = new();
    private readonly TaskWatch _watch;
    private readonly LinkGuard _guard;
    private ProtocolException? _violation;
    private readonly TaskCompletionSource<ReadyMessage> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _dead;
    // Being killed: it takes no more work (what it holds runs elsewhere once it is gone).
    private volatile bool _killing;
    private volatile bool _closing;
    private TaskStop? _stopped;
    private RemoteError? _initializerError;
    private volatile bool _initialized;

    // With an initializer: how long it may run (StartTimeout from Ready), and whether it ended (1) either way, reported
    // or timed out: the first to set it decides.
    private WatchTimer? _initializerDeadline;
    private int _initializerSettled;
    private Task _reading = Task.CompletedTask;
    private Task _watching = Task.CompletedTask;
    private readonly bool _inBand;
    private long _lastHeard = Environment.TickCount64;
    private Timer? _silenceCheck;
    private WorkerSilence? _silence;

    // The reading of the link (see ReadTurns): one source, read by the reader thread or, on a local link, by the caller
    // of a synchronous Apply while the reader thread need not read (no task in flight: _mayPark, and nothing asks for
    // the end to be read: _mustRead).
    private readonly BlockingFrameReader.Source _source;
    private readonly ReadTurns? _turns;
    private volatile bool _mayPark;
    private volatile bool _mustRead;

    // How long a caller that reads for its own result waits in poll before it looks whether its task ended otherwise.
    private const int CallerPollMilliseconds = 50;

    private WorkerConnection(int id, IWorkerTransport transport, PoolRuntime runtime)
    {
        Id = id;
        _transport = transport;
        _runtime = runtime;
        _sender = new FrameSender(transport.Output, transport.OutputCapacity, $"pool-worker-{id}-sender");
        // A worker that runs several async tasks at once needs that many chunks to run, and one queued.
        _inFlight = new InFlightChunks(runtime.Options.MaxTasksPerWorker ?? int.MaxValue, Math.Max(MinWindow, runtime.Options.MaxConcurrencyPerWorker + 1));
        _watch = new TaskWatch(this, runtime.Options.CancellationGrace);
        _guard = new LinkGuard(this);
        _inBand = transport.ProgressInBand;
        _source = new BlockingFrameReader.Source(transport.Input, _guard);
        _turns = transport.Input is BlockingSocketStream && !_inBand ? new ReadTurns(MustRead) : null;
    }

    public int Id { get; }

    public int ProcessId => _transport.ProcessId;

    public IWorkerTransport Transport => _transport;

    public PoolRuntime Runtime => _runtime;

    public bool IsDead => _dead;

    /// <summary>It served its quota of tasks and takes no more; it exits once its last chunk is done.</summary>
    public bool IsRetiring => _inFlight.IsRetiring;

    /// <summary>How many more tasks it may be sent before it retires (<see cref="ProcessPoolOptions.MaxTasksPerWorker"/>).</summary>
    public int Quota => _inFlight.Quota;

    /// <summary>Completes once the worker is gone and its in-flight chunks are collected.</summary>
    public Task<WorkerLoss> Lost => _lost.Task;

    public int InFlightCount => _inFlight.Count;

    /// <summary>Dispatcher: bytes written since the last <see cref="Flush"/>, the arrays sent as blocks included.</summary>
    public long Buffered => _sender.Buffered;

    /// <summary>Whether it takes another chunk now: alive and not being killed, with room in its window.</summary>
    public bool HasRoom => !_killing && _inFlight.HasRoom;

    /// <summary>Waits for the worker's Ready, checks its protocol version, sends Init and starts reading.</summary>
    /// <exception cref="WorkerStartException">The worker did not answer as a worker of this version.</exception>
    public static async Task<WorkerConnection> OpenAsync(int id, IWorkerTransport transport, PoolRuntime runtime, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var connection = new WorkerConnection(id, transport, runtime);
        connection._reading = connection.ReadLoopAsync();
        try
        {
            await connection.HandshakeAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The caller disposes the transport (and unmaps the progress cell): the read loop must be done first. A
            // reader thread that saw Ready may be parked (no task in flight): it is woken to read the end, or a start
            // cancelled just after Ready waited out the bound below.
            connection.Kill();
            await Task.WhenAny(connection._reading, Task.Delay(TimeSpan.FromSeconds(15), CancellationToken.None)).ConfigureAwait(false);
            throw;
        }

        connection._watching = connection.WatchExitAsync();
        if (connection._inBand)
        {
            connection._silenceCheck = new Timer(static state => ((WorkerConnection)state!).CheckSilence(), connection, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }

        return connection;
    }

    /// <summary>Dispatcher: writes a chunk (binding its function first if this worker has not seen it) and
    /// returns how many of its tasks were written; <paramref name="error"/> is the failure of the next one.</summary>
    public int Write(Chunk chunk, out Exception? error)
    {
        FrameWriter frames = _sender.Frames;
        long start = frames.Length;
        ShippedFunction function = chunk.Job.Function;
        if (_bound.Add(function.Id))
        {
            new BindMessage(function.Id, function.Descriptor).Write(frames);
        }

        frames.BeginFrame(MessageType.Run);
        int countPosition = chunk.Job.WriteRunHeader(frames, chunk, function.Id);
        int written = chunk.Job.WriteArguments(frames, chunk, out error);
        if (written == 0 && error is not null)
        {
            frames.AbandonFrame();
            return 0;
        }

        if (written < chunk.Count)
        {
            frames.PatchInt32(countPosition, written);
        }

        frames.EndFrame();
        chunk.Bytes = frames.Length - start;
        return written;
    }

    /// <summary>Dispatcher: tells the worker to forget a function it bound; false if it never bound it.</summary>
    public bool Unbind(int functionId)
    {
        if (!_bound.Remove(functionId) || _dead)
        {
            return false;
        }

        SimpleMessages.WriteUnbind(_sender.Frames, functionId);
        return true;
    }

    /// <summary>Dispatcher: a chunk written with <see cref="Write"/> is now this worker's; false if it is dead.</summary>
    public bool TryAdd(Chunk chunk)
    {
        if (!_inFlight.TryAdd(chunk))
        {
            return false;
        }

        if (_turns is not null)
        {
            if (chunk.Job == Job.WaitingCaller && _mayPark && _turns.TryReserve())
            {
                // The caller of a synchronous Apply, on its own thread: it reads for its result (ReadUntil).
                chunk.Job.ReadingLink = this;
            }
            else
            {
                _turns.Nudge();
            }
        }

        if (chunk.Job.TaskTimeout is { } timeout)
        {
            _watch.OnTimedChunkSent(timeout);
        }

        return true;
    }

    /// <summary>The chunk in flight with this id, or null.</summary>
    public Chunk? FindInFlight(int chunkId) => _inFlight.Find(chunkId);

    /// <summary>See <see cref="InFlightChunks.EarliestUnseenDeadline"/>.</summary>
    public (long Deadline, TimeSpan Timeout)? EarliestUnseenDeadline(TaskPosition? running, TaskPosition? decoding) =>
        _inFlight.EarliestUnseenDeadline(running, decoding);

    /// <summary>Whether any chunk in flight has a task timeout; the shortest one.</summary>
    public TimeSpan? ShortestTimeoutInFlight() => _inFlight.ShortestTimeout();

    /// <summary>
    /// Dispatcher, for a stopped job: the worker skips what it has not started of the job's chunks, a running
    /// task that takes a token sees it cancelled, and one still running after the grace period is killed.
    /// Returns whether a cancel frame was written.
    /// </summary>
    public bool CancelChunksOf(Job job)
    {
        int[] chunks = _inFlight.IdsOf(job);

        foreach (int chunkId in chunks)
        {
            new CancelMessage(chunkId, CancelMessage.WholeChunk).Write(_sender.Frames);
        }

        foreach (int chunkId in chunks)
        {
            _watch.StopAfterGrace(new TaskPosition(chunkId, -1), static _ => new OperationCanceledException("The call was cancelled while this task ran."));
        }

        return chunks.Length > 0;
    }

    /// <summary>The worker is to be killed: from now on it is given no chunk (one it was given runs elsewhere once it is gone).</summary>
    public void StopTakingWork() => _killing = true;

    /// <summary>
    /// Kills the worker to stop task <paramref name="stop"/>; that task then fails with the stop's error and the
    /// other tasks it held run elsewhere. In-process workers cannot be killed: the task keeps running.
    /// </summary>
    public void StopRunningTask(TaskStop stop)
    {
        if (!_transport.KillStopsRunningTask || _dead)
        {
            return;
        }

        Interlocked.CompareExchange(ref _stopped, stop, null);
        Kill();
    }

    /// <summary>Whether task <paramref name="position"/> has no outcome yet (it may still be running).</summary>
    public bool IsUnfinished(TaskPosition position) => FindInFlight(position.ChunkId) is { } chunk && chunk.Accounted <= position.Index;

    /// <summary>Dispatcher: asks the worker to cancel a running task, or with <see cref="CancelMessage.WholeChunk"/> the rest of a chunk.</summary>
    public void WriteCancel(CancelMessage cancel)
    {
        if (!_dead)
        {
            cancel.Write(_sender.Frames);
        }
    }

    /// <summary>
    /// Dispatcher (and the handshake, before the dispatcher sees this worker): sends what was buffered, without
    /// waiting for the worker (see <see cref="FrameSender"/>; what the worker holds unanswered tells it whether a
    /// write could wait).
    /// </summary>
    public void Flush() => _sender.Flush(_inFlight.Bytes);

    /// <summary>Closes the pipe so the worker exits on its own (Close, when all work is done).</summary>
    public void CloseGracefully()
    {
        _closing = true;
        _transport.CloseOutput();
        ReadToTheEnd();
    }

    public void Kill()
    {
        _killing = true;
        _transport.Kill();
        ReadToTheEnd();
    }

    /// <summary>
    /// The caller that took the reading in <see cref="TryAdd"/> reads the link until <paramref name="done"/> completes
    /// (its task's outcome arrived, or it ended otherwise) or the link ends, then gives the reading back. It waits in
    /// poll for at most <see cref="CallerPollMilliseconds"/> at a time, so that a task settled without a frame (the pool
    /// broke, say) never leaves it waiting.
    /// </summary>
    public void ReadUntil(Task done)
    {
        Debug.Assert(_turns is not null, "Only a local link is read by callers.");
        var socket = (BlockingSocketStream)_transport.Input;
        try
        {
            while (!done.IsCompleted)
            {
                if (socket.WaitReadable(CallerPollMilliseconds) && !_source.ReadFrames(OnFrame))
                {
                    _turns.End(null);
                    return;
                }
            }
        }
        catch (Exception e)
        {
            // The reader thread settles the connection with it, as if it had read it.
            _turns.End(e);
            return;
        }

        _turns.Return();
    }

    /// <summary>A caller that took the reading gives it back unread (its call failed before it could read).</summary>
    public void ReturnReading() => _turns?.Return();

    /// <summary>
    /// The worker broke the protocol in a way the reader cannot see itself (a frame that never completes): it is
    /// killed, and its loss reports <paramref name="violation"/> as a corrupt stream.
    /// </summary>
    public void OnViolation(ProtocolException violation)
    {
        if (Interlocked.CompareExchange(ref _violation, violation, null) is null && !_dead)
        {
            Kill();
            _transport.AbortInput();
        }
    }

    /// <summary>Reader: whether a task in flight returns arrays whose elements have block code <paramref name="code"/>.</summary>
    public bool ExpectsBlock(byte code) => _inFlight.ExpectsBlock(code);

    public void Dispose()
    {
        _initializerDeadline?.Dispose();
        _silenceCheck?.Dispose();
        _guard.Dispose();
        _watch.Dispose();
        _sender.Dispose();
        _transport.Dispose();
    }

    private async Task HandshakeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Init goes out before Ready comes back, which saves a round trip while both sides start, when it is small
        // enough that the pipe's buffer takes it whatever the worker does. A larger one (a big initializer argument)
        // waits for Ready, so that a worker that never reads cannot block this write beyond the start timeout. Before
        // the connection joins the pool either way, so the dispatcher does not write to it yet.
        _runtime.CreateInit(Id).Write(_sender.Frames);
        bool sentEarly = _sender.Frames.Length <= EarlyInitLimit;
        if (sentEarly)
        {
            Flush();
        }

        ReadyMessage ready;
        try
        {
            ready = await _ready.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new WorkerStartException(
                $"Worker {Id} (pid {ProcessId}) connected but did not say Ready within {timeout.TotalSeconds:0.#} s. Raise ProcessPoolOptions.StartTimeout on a loaded machine.");
        }

        if (ready.ProtocolVersion != ProtocolInfo.Version)
        {
            throw new WorkerStartException(
                $"Worker {Id} speaks protocol {ready.ProtocolVersion} and the host {ProtocolInfo.Version}: Pool.Worker.dll and Pool.Host.dll come from different versions of ProcessPool.");
        }

        if (!sentEarly)
        {
            Flush();
        }
    }

    /// <summary>
    /// Reads the worker's frames on a dedicated thread with blocking reads (no thread hop between a frame's
    /// arrival and its routing), then settles the connection however the stream ended.
    /// </summary>
    private Task ReadLoopAsync()
    {
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                // The loss is settled on this thread too: on the thread pool it waited for a free thread, and with the
                // thread pool's every thread held by callers waiting for their results (capped, or growing slowly), a
                // crashed task's caller waited with them.
                Disconnect(ReadFrames());
                ended.TrySetResult();
            }
            catch (Exception e)
            {
                ended.TrySetException(e);
            }
        })
        { IsBackground = true, Name = $"pool-worker-{Id}-reader" };
        thread.Start();
        return ended.Task;
    }

    private void Disconnect(Exception? failure)
    {
        if (_inBand && failure is IOException { InnerException: System.Net.Sockets.SocketException { SocketErrorCode: var code } } &&
            code is System.Net.Sockets.SocketError.TimedOut or System.Net.Sockets.SocketError.HostUnreachable or
                System.Net.Sockets.SocketError.NetworkUnreachable or System.Net.Sockets.SocketError.HostDown)
        {
            // The kernel gave the link up (keepalive probes or sent data unanswered for TcpLink.DeadPeerTimeout): the
            // worker's machine or the network to it is gone, as when its heartbeats stop.
            Interlocked.CompareExchange(ref _silence, new WorkerSilence(TimeSpan.FromMilliseconds(Environment.TickCount64 - Volatile.Read(ref _lastHeard))), null);
        }

        failure = Volatile.Read(ref _violation) ?? Volatile.Read(ref _silence) ?? failure;
        _ready.TrySetException(new WorkerStartException($"Worker {Id} (pid {ProcessId}) closed its pipe before saying Ready." +
            (failure is null ? string.Empty : $" {failure.Message}")));
        TakeLoss(failure);
    }

    private Exception? ReadFrames()
    {
        try
        {
            if (_turns is null)
            {
                while (_source.ReadFrames(OnFrame))
                {
                }

                return null;
            }

            while (_turns.AwaitReaderTurn())
            {
                bool more;
                try
                {
                    more = _source.ReadFrames(OnFrame);
                }
                catch (Exception e)
                {
                    _turns.End(e);
                    throw;
                }

                if (!more)
                {
                    _turns.End(null);
                    return null;
                }

                _turns.Release();
            }

            // A caller that read saw the link end.
            return _turns.Failure is { } failure ? Settle(failure) : null;
        }
        catch (Exception e)
        {
            return Settle(e);
        }
        finally
        {
            _source.Dispose();
        }
    }

    /// <summary>What a read's exception means for the connection.</summary>
    private Exception? Settle(Exception e) =>
        // A link the pool closed itself (Close, or a kill that closes a remote worker's link) ends without a failure.
        // Anything else (a protocol error, or a bug in routing) means this worker cannot be trusted any more: it is
        // killed and its tasks are settled like those of a crashed worker, so nothing waits forever.
        e is IOException or ObjectDisposedException or OperationCanceledException && (_closing || _transport.Killed) ? null : e;

    /// <summary>Whether the reader thread must read: until start-up is over, while tasks are in flight, and to see the end.</summary>
    private bool MustRead() => !_mayPark || _mustRead || _inFlight.Count > 0;

    /// <summary>The link will end (the worker exits, is killed or was asked to): the reader thread reads until it does.</summary>
    private void ReadToTheEnd()
    {
        _mustRead = true;
        _turns?.Nudge();
    }

    private void OnFrame(MessageType type, ReadOnlySequence<byte> payload)
    {
        if (_inBand)
        {
            Volatile.Write(ref _lastHeard, Environment.TickCount64);
        }

        if (_ready.Task.IsCompleted)
        {
            Route(type, payload);
        }
        else if (type == MessageType.Ready)
        {
            ReadyMessage ready = ReadyMessage.Read(payload);
            _transport.OnReady(ready.ProcessId);
            // Without an initializer nothing more comes unasked: the reader thread may sleep while no task is in flight.
            _mayPark = !_runtime.HasInitializer;
            if (_runtime.HasInitializer && _transport.KillStopsRunningTask)
            {
                _initializerDeadline = new WatchTimer(static state => ((WorkerConnection)state!).InitializerTimedOut(), this);
                _initializerDeadline.Change(_runtime.Options.StartTimeout, Timeout.InfiniteTimeSpan);
            }

            _ready.TrySetResult(ready);
        }
        else
        {
            throw new WorkerStartException($"Worker {Id} (pid {ProcessId}) sent {type} before Ready: it is not a ProcessPool worker of this version.");
        }
    }

    private void Route(MessageType type, ReadOnlySequence<byte> payload)
    {
        switch (type)
        {
            case MessageType.Results:
            {
                var reader = new SequenceReader<byte>(payload);
                ResultsHeader header = ResultsHeader.Read(ref reader);
                Chunk chunk = Find(header.ChunkId, header.Offset, header.Count);
                if (_watch.AnyTimedOut)
                {
                    RouteResultsAfterTimeouts(chunk, header, ref reader);
                }
                else
                {
                    chunk.Job.OnResults(chunk.FirstIndex + header.Offset, header.Count, ref reader);
                }

                Account(chunk, header.Count);
                break;
            }

            case MessageType.Failed:
            {
                FailedMessage failed = FailedMessage.Read(payload);
                Chunk chunk = Find(failed.ChunkId, failed.Offset, failed.Count);
                // A task whose timeout passed fails with the timeout, however it ended (cancelled by its token, or
                // with an error of its own within the grace period).
                Func<long, Exception> error = failed.Count == 1 && _watch.AnyTimedOut && _watch.TimedOut(new TaskPosition(failed.ChunkId, failed.Offset)) is { } timedOut
                    ? timedOut
                    : failed.Kind != FailureKind.Canceled
                        ? index => ExceptionRebuilder.Rebuild(failed.Error!, index)
                        : static _ => new OperationCanceledException("The task was cancelled.");
                chunk.Job.OnFailed(chunk.FirstIndex + failed.Offset, failed.Count, error);
                Account(chunk, failed.Count);
                break;
            }

            case MessageType.Initialized:
                if (Interlocked.Exchange(ref _initializerSettled, 1) == 0)
                {
                    _initializerDeadline?.Dispose();
                    _initialized = true;
                    _mayPark = true;
                    _runtime.OnWorkerInitialized();
                }

                break;

            case MessageType.InitFailed:
                _initializerError = SimpleMessages.ReadInitFailed(payload);
                break;

            case MessageType.Progress when _inBand:
            {
                // What the shared cell tells of a local worker: which task runs, and since when in this machine's clock.
                ProgressMessage progress = ProgressMessage.Read(payload);
                long now = Stopwatch.GetTimestamp();
                _transport.Cell.Set(progress.Position, Since(progress.ElapsedMicroseconds), progress.Decoding, Since(progress.DecodingMicroseconds));

                long Since(long microseconds) => now - (long)(Math.Clamp(microseconds, 0, (long)TimeSpan.FromDays(1).TotalMicroseconds) * (Stopwatch.Frequency / 1e6));
                break;
            }

            default:
                throw new ProtocolException($"it sent a frame of type {type} where outcomes were expected");
        }
    }

    /// <summary>
    /// Results of which some may belong to tasks whose timeout passed, that ignored their token and returned within
    /// the grace period: those fail with the timeout (their values are read and dropped), as they would have if they
    /// had run a moment longer; the others are delivered.
    /// </summary>
    private void RouteResultsAfterTimeouts(Chunk chunk, ResultsHeader header, ref SequenceReader<byte> reader)
    {
        int offset = header.Offset;
        int end = header.Offset + header.Count;
        while (offset < end)
        {
            (int Index, Func<long, Exception> Error)? late = _watch.TakeTimedOut(header.ChunkId, offset, end);
            int stop = late?.Index ?? end;
            if (stop > offset)
            {
                chunk.Job.OnResults(chunk.FirstIndex + offset, stop - offset, ref reader);
            }

            if (late is { } timedOut)
            {
                chunk.Job.OnLateResult(chunk.FirstIndex + timedOut.Index, ref reader, timedOut.Error);
                stop++;
            }

            offset = stop;
        }
    }

    private Chunk Find(int chunkId, int offset, int count) => _inFlight.Expect(chunkId, offset, count);

    private void Account(Chunk chunk, int count)
    {
        if (!_inFlight.Account(chunk, count, out long service, out bool retire))
        {
            return;
        }

        chunk.Job.OnChunkServiced(chunk.Count, service);
        if (_runtime.Metrics.TaskDuration.Enabled)
        {
            _runtime.Metrics.TaskDuration.Record((double)service / Stopwatch.Frequency / chunk.Count);
        }

        chunk.Job.OnChunkCompleted(chunk);

        if (retire)
        {
            // Its quota of tasks is served: it exits on end of input and the supervisor starts a fresh one.
            CloseGracefully();
        }

        if (_inFlight.IsLow)
        {
            _runtime.Dispatcher.RoomFreed();
        }
    }

    private async Task WatchExitAsync()
    {
        await _transport.Exited.ConfigureAwait(false);
        ReadToTheEnd();
        try
        {
            // End-of-stream normally arrives with the exit; a pipe still open after a second (a descendant
            // holding it) is cut here, or the connection would never report the loss.
            await _reading.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _transport.AbortInput();
        }
    }

    /// <summary>Timer, for a worker on another machine: gives it up once it has been silent for <see cref="SilenceLimit"/>.</summary>
    private void CheckSilence()
    {
        long silent = Environment.TickCount64 - Volatile.Read(ref _lastHeard);
        if (_dead || silent < SilenceLimit.TotalMilliseconds || Interlocked.CompareExchange(ref _silence, new WorkerSilence(TimeSpan.FromMilliseconds(silent)), null) is not null)
        {
            return;
        }

        _transport.Kill();
        _transport.AbortInput();
    }

    /// <summary>
    /// Reader thread, once the link has ended: takes the chunks in flight, waits for the worker's exit and output (without
    /// the thread pool, which may have no thread to give), and completes <see cref="Lost"/>, whose supervisor settles
    /// the tasks on this thread.
    /// </summary>
    private void TakeLoss(Exception? failure)
    {
        _initializerDeadline?.Dispose();
        _silenceCheck?.Dispose();
        _dead = true;
        Chunk[] orphans = _inFlight.Close();

        // The task it was running; between tasks, the one whose arguments it was decoding (their type's code may crash it).
        TaskPosition? running = _transport.Cell.TryRead(out int chunkId, out int index, out _) || _transport.Cell.TryReadDecoding(out chunkId, out index, out _)
            ? new TaskPosition(chunkId, index)
            : null;
        if (!_closing)
        {
            _transport.Kill();
        }

        bool exited = _transport.WaitForExit(TimeSpan.FromSeconds(10));
        if (!exited)
        {
            _transport.Kill();
        }

        // At most half a second: a descendant may hold stderr open (then the lines read so far are reported).
        _ = ((IAsyncResult)_transport.OutputDrained).AsyncWaitHandle.WaitOne(TimeSpan.FromMilliseconds(500));
        WorkerExit exit = exited ? _transport.ExitStatus : new WorkerExit(-1);

        _watch.Dispose();
        _guard.Dispose();
        TaskStop? stopped = Volatile.Read(ref _stopped);
        _lost.TrySetResult(new WorkerLoss(
            this, exit, orphans, running, failure, _closing && orphans.Length == 0, _inFlight.IsRetiring, stopped, _initializerError ?? DiedInInitializer(exit, stopped)));
    }

    /// <summary>
    /// Timer: the initializer has run for <see cref="ProcessPoolOptions.StartTimeout"/> since the worker said Ready and
    /// has not reported. A hang is a failure as a throw is: the worker is killed, its loss counts towards
    /// <see cref="ProcessPoolOptions.InitializerAttempts"/>, and its tasks run elsewhere (or fail with the
    /// <see cref="InitializerException"/> once the pool stops), rather than waiting behind it forever.
    /// </summary>
    private void InitializerTimedOut()
    {
        if (Interlocked.Exchange(ref _initializerSettled, 1) != 0 || _dead)
        {
            return;
        }

        TimeSpan limit = _runtime.Options.StartTimeout;
        Interlocked.CompareExchange(ref _initializerError, new RemoteError(
            typeof(TimeoutException).FullName!,
            typeof(TimeoutException).Assembly.GetName().Name!,
            $"it did not finish within ProcessPoolOptions.StartTimeout ({limit.TotalSeconds:0.###} s) on worker {Id} (pid {ProcessId}), which was killed. " +
                "Raise StartTimeout if it needs longer (loading a large model, say); if it waits for something that does not come (a lock, a service, console input), it never finishes.",
            null,
            []), null);
        Kill();
    }

    /// <summary>
    /// A worker that ended, unasked, before its initializer reported success failed to initialize as surely as one
    /// whose initializer threw (it called exit, crashed, or was killed from outside): it counts towards
    /// <see cref="ProcessPoolOptions.InitializerAttempts"/>, or an initializer that kills its process would have
    /// workers started forever.
    /// </summary>
    private RemoteError? DiedInInitializer(WorkerExit exit, TaskStop? stopped)
    {
        if (!_runtime.HasInitializer || _initialized || _closing || stopped is not null || !_runtime.ShouldRunWorkers)
        {
            return null;
        }

        IReadOnlyList<string> tail = _transport.StandardErrorTail;
        string output = tail.Count == 0 ? string.Empty : $" Its last lines of standard error:{Environment.NewLine}{string.Join(Environment.NewLine, tail)}";
        return new RemoteError(
            typeof(WorkerCrashedException).FullName!,
            typeof(WorkerCrashedException).Assembly.GetName().Name!,
            $"worker {Id} (pid {ProcessId}) ended with {exit.Describe()} before its initializer finished.{output}",
            null,
            []);
    }
}
