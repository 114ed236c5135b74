using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// <c>Imap</c>, <c>ImapUnordered</c> and <c>ImapOutcomes</c>: a producer pulls the input lazily, at most
/// <see cref="Window"/> tasks ahead of what the consumer has taken, so an endless input works in flat
/// memory; outcomes reach the consumer in input order (through a <see cref="ReorderBuffer{T}"/>) or in
/// completion order. Abandoning the enumeration stops the producer and drops the queued chunks.
/// After <c>Close</c> the window counts from the tasks completed rather than the results taken, so that
/// <c>Close(); Join();</c> never waits for a consumer, and input is still read no faster than the workers run it.
/// </summary>
internal sealed class ImapJob<TArgs, TResult> : Job<TArgs, TResult>
{
    private readonly bool _ordered;
    // Without a chunk size given, chunks start at one task and adapt (as joblib's auto batching does): about
    // TargetChunkTicks of work each, growing at most twofold per completed chunk, shrinking at once.
    private const int MaxAdaptiveChunkSize = 128;
    private static readonly double TargetChunkTicks = Stopwatch.Frequency / 500.0;
    private readonly bool _adaptive;
    private readonly int _windowChunks;
    private int _chunkSize;
    private bool _closed;
    private readonly ConcurrentQueue<Chunk> _chunks = new();
    private readonly Signal _room = new();
    private readonly Signal _available = new();
    private readonly CancellationTokenSource _stopInput = new();
    private readonly Lock _lock = new();
    private readonly ReorderBuffer<TResult> _reorder = new();
    private readonly Queue<Outcome<TResult>> _completed = new();
    // Completed chunks, with their argument arrays, for the producer to fill again: the steady path allocates nothing per chunk.
    private readonly Stack<Chunk> _spare = new();
    private readonly Lock _spareLock = new();
    private long _window;
    private long _pulled;
    private long _taken;
    // Outcomes completed (taken or not): after Close, what the window counts from.
    private long _done;
    private long _unaccounted = 1;
    private bool _inputDone;
    private long _total = -1;
    // With a progress reporter, the enumeration ends only once the final report has been delivered.
    private bool _reported;
    private Exception? _inputError;
    private Exception? _stopReason;
    private int _enumerated;
    private Task _producer = Task.CompletedTask;
    private CancellationTokenRegistration _cancellation;
    private bool _ownThread;

    /// <summary>A job whose chunks hold <paramref name="chunkSize"/> tasks, or, when it is null, a number adapted to the tasks' duration.</summary>
    public ImapJob(PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result, int? chunkSize, bool ordered)
        : base(runtime, function, args, result)
    {
        _ordered = ordered;
        _adaptive = chunkSize is null;
        _chunkSize = chunkSize ?? 1;
        _windowChunks = Math.Max(4 * runtime.WorkerCount, 2);
        _window = WindowFor(_chunkSize);
    }

    /// <summary>
    /// How far ahead of the consumer input is read: 4 chunks per worker, and at least
    /// <see cref="MinWindow"/> items, so that small chunks still keep enough tasks in flight to hide the round trip.
    /// </summary>
    public const int MinWindow = 256;

    /// <summary>Tasks per chunk now (adapts when the call gave none).</summary>
    public int ChunkSize => Volatile.Read(ref _chunkSize);

    /// <summary>How much room the producer waits for once the window is full: a whole chunk; and, for a producer on a thread
    /// of its own, a quarter of the window at least, so that it is woken (a context switch) once per batch, not once per
    /// result taken. (An async producer is a thread-pool work item: a quarter made ImapAsync of tiny tasks 20 % slower.)</summary>
    private long Refill => _ownThread ? Math.Max(ChunkSize, Window / 4) : ChunkSize;

    /// <summary>How many tasks the producer may pull beyond those the consumer has taken.</summary>
    public long Window => Volatile.Read(ref _window);

    /// <summary>How many input items have been pulled so far.</summary>
    public long Pulled => Volatile.Read(ref _pulled);

    public override bool HasChunks => !_chunks.IsEmpty && !IsStopped;

    /// <summary>The input's count when it was known without enumerating it (an array, a collection); else null.</summary>
    public long? KnownCount { get; init; }

    public override long? ProgressTotal => KnownCount;

    public void Start(IAsyncEnumerable<TArgs> source, CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            // Released when the job drains (Account): a long-lived token (an application's stopping token) must not keep
            // every Imap call ever made with it, each with its chunks, until it is cancelled.
            _cancellation = cancellationToken.Register(static (state, token) => ((Job)state!).Stop(new OperationCanceledException(
                "The Imap call was cancelled.", token)), this);
        }

        if (source is LazySequence<TArgs> { Count: <= MinWindow })
        {
            // A collection that fits in the window is read at once, on the caller's thread: it never waits for room (so
            // every step completes at once), and a small call costs no thread.
            try
            {
                ProduceAsync(source).GetAwaiter().GetResult();
                _producer = Task.CompletedTask;
            }
            catch (Exception e)
            {
                _producer = Task.FromException(e);
            }
        }
        else if (source is LazySequence<TArgs> && BlockingResults.InBlockingCall)
        {
            // A blocking Imap's input is read on a thread of its own, which blocks while the window is full: reading it
            // needs no thread-pool thread, so a blocking Imap makes progress even when its callers hold every thread-pool
            // thread (it waited for the pool to grow, or forever under ThreadPool.SetMaxThreads). The enumerable may
            // block too. An async caller holds no thread while it waits: its Imap reads on the thread pool, and waits
            // for room without a thread (a thread of its own cost ImapAsync of tiny tasks about 10 % here).
            _ownThread = true;
            var produced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _producer = produced.Task;
            new Thread(() =>
            {
                try
                {
                    // Synchronous throughout: the input's enumerator completes each step at once, and the waits block.
                    ProduceAsync(source).GetAwaiter().GetResult();
                    produced.SetResult();
                }
                catch (Exception e)
                {
                    produced.SetException(e);
                }
            })
            { IsBackground = true, Name = "pool-imap-input" }.Start();
        }
        else
        {
            _producer = Task.Run(() => ProduceAsync(source), CancellationToken.None);
        }

        // The input's own errors are outcomes (ProduceAsync); anything else that ends the producer (out of memory) ends
        // the job with it, so the consumer sees it rather than waiting for results that will never come.
        _ = _producer.ContinueWith(
            static (producer, job) => ((Job)job!).Stop(producer.Exception!.GetBaseException()),
            this, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public IAsyncEnumerable<TOut> Results<TOut>(Func<Outcome<TResult>, TOut> project) => new Enumerable<TOut>(this, project);

    public override Chunk? TryTakeChunk() => !IsStopped && _chunks.TryDequeue(out Chunk? chunk) ? chunk : null;

    public override void DropPending()
    {
        while (_chunks.TryDequeue(out Chunk? chunk))
        {
            Runtime.Metrics.Queued.Add(-chunk.Count);
            Account(chunk.Count);
        }
    }

    private long WindowFor(int chunkSize) => Math.Max((long)chunkSize * _windowChunks, MinWindow);

    public override void OnChunkServiced(int count, long serviceTicks)
    {
        if (!_adaptive || count <= 0)
        {
            return;
        }

        double perTask = Math.Max(1, serviceTicks) / (double)count;
        int ideal = (int)Math.Clamp(TargetChunkTicks / perTask, 1, MaxAdaptiveChunkSize);
        int current = Volatile.Read(ref _chunkSize);
        int next = ideal > current ? Math.Min(ideal, current * 2) : ideal;
        if (next == current)
        {
            return;
        }

        Volatile.Write(ref _chunkSize, next);
        Volatile.Write(ref _window, WindowFor(next));
        _room.Set();
    }

    public override void OnPoolClosed()
    {
        // The window now counts from the tasks completed, not from the results taken: Close(); Join(); must not wait
        // for a consumer (there may be none), and lifting the bound instead let an endless input be read as fast as
        // it came, gigabytes in seconds, though the workers ran it no faster (a live consumer, an application closing
        // its pool to shut down).
        Volatile.Write(ref _closed, true);
        _room.Set();
    }

    /// <summary>The tasks the window counts from: those taken by the consumer, or, after Close, those completed.</summary>
    private long Consumed => Volatile.Read(ref _closed) ? Volatile.Read(ref _done) : Volatile.Read(ref _taken);

    protected override void OnStopped(Exception reason)
    {
        lock (_lock)
        {
            _stopReason = reason;
        }

        _stopInput.Cancel();
        _available.Set();
        _room.Set();
    }

    protected override void OnValue(long index, TResult value) => Add(new Outcome<TResult>(index, value));

    protected override void OnError(long index, Exception error) => Add(new Outcome<TResult>(index, error));

    protected override void Account(int count)
    {
        _available.Set();
        if (Interlocked.Add(ref _unaccounted, -count) == 0)
        {
            // Unregister, not Dispose: it never waits for the callback, which may be running (Stop) on another thread.
            _cancellation.Unregister();
            Drained(Reported);
        }
    }

    private void Add(Outcome<TResult> outcome)
    {
        lock (_lock)
        {
            if (_ordered)
            {
                _reorder.Put(outcome);
            }
            else
            {
                _completed.Enqueue(outcome);
            }

            Volatile.Write(ref _done, _done + 1);
        }

        if (Volatile.Read(ref _closed) && Volatile.Read(ref _pulled) - _done <= Window - Refill)
        {
            // After Close the producer waits for tasks to complete (Consumed).
            _room.Set();
        }
    }

    private async Task ProduceAsync(IAsyncEnumerable<TArgs> source)
    {
        Chunk chunk = NextChunk();
        var buffer = (TArgs[])chunk.Items;
        int count = 0;
        Exception? inputError = null;
        try
        {
            await foreach (TArgs item in source.WithCancellation(_stopInput.Token).ConfigureAwait(false))
            {
                if (_pulled - Consumed >= Volatile.Read(ref _window))
                {
                    // The window is full: what was pulled goes now (the consumer may be waiting for it), and pulling
                    // resumes when there is room for a whole chunk, not for one item, or a consumer that is slower
                    // than the workers would get chunks of one task each; and for a quarter of the window at least, so
                    // that the producer is woken once per batch, not once per result taken.
                    if (count > 0)
                    {
                        PublishAndStartNext();
                    }

                    while (_pulled - Consumed > Volatile.Read(ref _window) - Refill)
                    {
                        // No token: Stop cancels _stopInput and then sets _room (a cancellable wait allocates each time).
                        if (_ownThread)
                        {
                            _room.Wait();
                        }
                        else
                        {
                            await _room.WaitAsync().ConfigureAwait(false);
                        }

                        _stopInput.Token.ThrowIfCancellationRequested();
                    }
                }

                if (count == buffer.Length)
                {
                    if (count >= ChunkSize)
                    {
                        // The adapting size shrank below what this chunk holds already.
                        PublishAndStartNext();
                    }
                    else
                    {
                        // A large chunk size: the array grows with what arrives rather than being allocated whole up front.
                        chunk = new Chunk(this, 0, 0, buffer = Grown(buffer, ChunkSize), 0);
                    }
                }

                buffer[count++] = item;
                Interlocked.Increment(ref _unaccounted);
                Volatile.Write(ref _pulled, _pulled + 1);
                // The array may be larger than the chunk size (a spare) or smaller (the size grew since it was taken).
                if (count >= ChunkSize)
                {
                    PublishAndStartNext();
                }
            }
        }
        catch (OperationCanceledException) when (_stopInput.IsCancellationRequested)
        {
            // Stopped: pull no more.
        }
        catch (Exception e)
        {
            // The input sequence itself threw: the consumer gets it after the items pulled before it.
            inputError = e;
        }

        if (count > 0)
        {
            if (IsStopped)
            {
                Account(count);
            }
            else
            {
                Publish(chunk, count);
            }
        }

        lock (_lock)
        {
            _inputDone = true;
            _total = _pulled;
            _inputError = inputError;
        }

        Account(1);

        void PublishAndStartNext()
        {
            Publish(chunk, count);
            chunk = NextChunk();
            buffer = (TArgs[])chunk.Items;
            count = 0;
        }
    }

    private void Publish(Chunk chunk, int count)
    {
        Runtime.Metrics.Submitted.Add(count);
        Runtime.Metrics.Queued.Add(count);
        chunk.Reuse(_pulled - count, count);
        _chunks.Enqueue(chunk);
        Runtime.Dispatcher.Enqueue(this);
    }

    /// <summary>The next outcome in the job's order, or null at the end.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Outcome<TResult>?> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryNext(out Outcome<TResult>? next))
            {
                return next;
            }

            await _available.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>As <see cref="NextAsync"/>, blocking this thread: the blocking enumerable's wait, which needs no thread-pool thread to wake it.</summary>
    private Outcome<TResult>? Next(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryNext(out Outcome<TResult>? next))
            {
                return next;
            }

            _available.Wait(cancellationToken);
        }
    }

    /// <summary>The next outcome, or null at the end; false when there is none yet.</summary>
    private bool TryNext(out Outcome<TResult>? next)
    {
        lock (_lock)
        {
            if (_stopReason is { } reason)
            {
                throw reason;
            }

            Outcome<TResult> outcome;
            if (_ordered ? _reorder.TryTake(out outcome) : _completed.TryDequeue(out outcome))
            {
                Volatile.Write(ref _taken, _taken + 1);
                // The producer waits for room for a whole chunk: wake it only when there is (it would wait again, and a
                // producer on its own thread pays a context switch for each wake-up). A stale _pulled is lower than the
                // producer's, so it can only wake it early, never leave it asleep with room.
                if (Volatile.Read(ref _pulled) - _taken <= Window - Refill)
                {
                    _room.Set();
                }

                next = outcome;
                return true;
            }

            if (_inputDone && _taken == _total && (_reported || Progress is null))
            {
                if (_inputError is { } error)
                {
                    // Once: the next call ends the enumeration, as Python's imap stops after the input's error.
                    _inputError = null;
                    next = new Outcome<TResult>(_taken, error);
                    return true;
                }

                next = null;
                return true;
            }
        }

        next = null;
        return false;
    }

    /// <summary>Takes back a chunk that completed where it was sent, with its array, unless it shares the array with
    /// another chunk (cut from it when a worker was lost or a frame was split).</summary>
    protected override void ChunkCompleted(Chunk chunk)
    {
        if (chunk.SharesItems || IsStopped)
        {
            return;
        }

        if (RuntimeHelpers.IsReferenceOrContainsReferences<TArgs>())
        {
            // A spare must not keep the caller's objects alive. Slots past Count were cleared on an earlier return.
            Array.Clear(chunk.Items, 0, chunk.Count);
        }

        lock (_spareLock)
        {
            // As many as were in flight at once, within bounds: one per task of the smallest window.
            if (_spare.Count < MinWindow + _windowChunks)
            {
                _spare.Push(chunk);
            }
        }
    }

    /// <summary>
    /// A chunk to fill with the next tasks: a spare one whose array is large enough (a chunk may fill less than its
    /// array, so an adapting chunk size that shrinks does not make the spares useless), or a new one.
    /// </summary>
    private Chunk NextChunk()
    {
        int size = Math.Min(ChunkSize, FirstArrayLength);
        lock (_spareLock)
        {
            while (_spare.TryPop(out Chunk? spare))
            {
                if (spare.Items.Length >= size)
                {
                    return spare;
                }
            }
        }

        return new Chunk(this, 0, 0, new TArgs[size], 0);
    }

    /// <summary>A chunk's argument array is at most this long when taken; it grows (<see cref="Grown"/>) only for a chunk size above it.</summary>
    private const int FirstArrayLength = 4096;

    private static TArgs[] Grown(TArgs[] full, int chunkSize)
    {
        var grown = new TArgs[(int)Math.Min(Math.Min(chunkSize, 2L * full.Length), Array.MaxLength)];
        full.CopyTo(grown, 0);
        return grown;
    }

    private void Reported()
    {
        lock (_lock)
        {
            _reported = true;
        }

        _available.Set();
    }

    private void Abandon() => Stop(new OperationCanceledException("The enumeration of the Imap results was abandoned before its end."));

    private sealed class Enumerable<TOut>(ImapJob<TArgs, TResult> job, Func<Outcome<TResult>, TOut> project) : IAsyncEnumerable<TOut>
    {
        public IAsyncEnumerator<TOut> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref job._enumerated, 1) != 0)
            {
                throw new InvalidOperationException(
                    "The results of an Imap call can be enumerated once, as a Python iterator can; call Imap again, or keep the results in a list.");
            }

            return new Enumerator<TOut>(job, project, cancellationToken);
        }
    }

    /// <summary>A failed task throws from <see cref="MoveNextAsync"/> at its position; calling it again goes on
    /// with the next one, as Python's imap iterator does.</summary>
    private sealed class Enumerator<TOut>(ImapJob<TArgs, TResult> job, Func<Outcome<TResult>, TOut> project, CancellationToken cancellationToken)
        : IAsyncEnumerator<TOut>, IBlockingEnumerator<TOut>
    {
        private bool _finished;

        public TOut Current { get; private set; } = default!;

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<bool> MoveNextAsync()
        {
            Outcome<TResult>? next;
            try
            {
                next = await job.NextAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _finished = job.IsStopped;
                throw;
            }

            return Took(next);
        }

        /// <summary>As <see cref="MoveNextAsync"/>, blocking this thread (the blocking <c>Imap</c>).</summary>
        public bool MoveNext()
        {
            Outcome<TResult>? next;
            try
            {
                next = job.Next(cancellationToken);
            }
            catch
            {
                _finished = job.IsStopped;
                throw;
            }

            return Took(next);
        }

        private bool Took(Outcome<TResult>? next)
        {
            if (next is not { } outcome)
            {
                _finished = true;
                return false;
            }

            Current = project(outcome);
            return true;
        }

        public ValueTask DisposeAsync()
        {
            if (!_finished)
            {
                job.Abandon();
            }

            return default;
        }
    }
}
