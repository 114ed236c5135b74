using System.Buffers;
using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// One call of the API (a Map, an Imap, an Apply): a source of chunks for the dispatcher and a sink of
/// outcomes for the router. The dispatcher pulls chunks (<see cref="TryTakeChunk"/>) only when a worker has
/// room, so input is serialized at the moment it is sent and never queued as bytes.
/// </summary>
internal abstract class Job(PoolRuntime runtime, ShippedFunction function)
{
    private int _queued;
    private int _stopped;
    private int _drained;

    /// <summary>
    /// The job whose caller, on this thread, waits for it as soon as it is submitted (a synchronous <c>Apply</c>): a
    /// local link its one chunk goes to may let that caller read the result itself (see <see cref="ReadTurns"/>).
    /// </summary>
    [ThreadStatic]
    public static Job? WaitingCaller;

    public ShippedFunction Function => function;

    /// <summary>The link whose reading the waiting caller took when its chunk was written (<see cref="WaitingCaller"/>); null otherwise.</summary>
    public WorkerConnection? ReadingLink { get; set; }

    public PoolRuntime Runtime => runtime;

    public bool IsStopped => Volatile.Read(ref _stopped) != 0;

    /// <summary>How many tasks the call has, when known at the call (Map, Apply); null for Imap.</summary>
    public virtual long? Total => null;

    /// <summary>How many tasks progress reports give as the call's total: <see cref="Total"/>, or for an Imap the input's count when it is known without enumerating it.</summary>
    public virtual long? ProgressTotal => Total;

    /// <summary>Reports this call's progress (its own, or <see cref="ProcessPoolOptions.Progress"/>); null when none is set.</summary>
    public ProgressReporter? Progress { get; set; }

    /// <summary>The pool's owner: a pending call keeps its pool from being finalized (and its workers terminated).</summary>
    public object? Owner { get; init; }

    /// <summary>How long each task may run; null for no limit.</summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>The call's activity (<see cref="PoolTracing.StartCall"/>), when someone listens.</summary>
    private Activity? _activity;

    /// <summary>The trace context its chunks carry when there is no chunk activity; default when the call had none.</summary>
    private ActivityContext _traceParent;

    private bool _traced;

    /// <summary>At the call, on the caller's thread: starts the call's activity and takes the trace context its chunks carry.</summary>
    public void StartTrace(string operation)
    {
        _activity = PoolTracing.StartCall(operation, out _traceParent);
        _traced = _traceParent != default;
    }

    /// <summary>
    /// Dispatcher: writes a chunk's Run header into an open frame, with the trace context when the call has one (in a
    /// chunk activity of its own when someone listens); returns the position of its count.
    /// </summary>
    public int WriteRunHeader(FrameWriter writer, Chunk chunk, int functionId)
    {
        RunFlags flags = TaskTimeout is null ? RunFlags.None : RunFlags.Timed;
        ActivityContext trace = default;
        if (_traced)
        {
            flags |= RunFlags.Traced;
            trace = _traceParent;
            if (_activity is { } call && PoolTracing.StartChunk(call, chunk) is { } activity)
            {
                chunk.Activity = activity;
                trace = activity.Context;
            }
        }

        return new RunHeader(chunk.Id, functionId, chunk.Count, flags, trace).Write(writer);
    }

    /// <summary>The block code (<see cref="RawTypes.BlockCode{T}"/>) of the arrays its tasks return, or -1: a worker may send blocks only of this type.</summary>
    public virtual int ResultBlockCode => -1;

    /// <summary>Dispatcher: whether <see cref="TryTakeChunk"/> may return a chunk now.</summary>
    public abstract bool HasChunks { get; }

    /// <summary>Dispatcher only: the next chunk, or null.</summary>
    public abstract Chunk? TryTakeChunk();

    /// <summary>Dispatcher only: writes a chunk's arguments; on a value that cannot be serialized, returns
    /// how many were written before it and the error for it.</summary>
    public abstract int WriteArguments(FrameWriter writer, Chunk chunk, out Exception? error);

    /// <summary>Dispatcher only, after <see cref="Stop"/>: accounts for the tasks that will never be sent.</summary>
    public abstract void DropPending();

    /// <summary>Router: the values of tasks <paramref name="first"/> .. + <paramref name="count"/> - 1.</summary>
    public abstract void OnResults(long first, int count, ref SequenceReader<byte> reader);

    /// <summary>Router: the value of task <paramref name="index"/> came after its timeout; it is read past, and the task fails.</summary>
    public abstract void OnLateResult(long index, ref SequenceReader<byte> reader, Func<long, Exception> error);

    /// <summary>Router, supervisor, dispatcher: these tasks have no value.</summary>
    public abstract void OnFailed(long first, int count, Func<long, Exception> error);

    /// <summary>Router: a chunk of <paramref name="count"/> tasks took about <paramref name="serviceTicks"/> of a worker's time.</summary>
    public virtual void OnChunkServiced(int count, long serviceTicks)
    {
    }

    /// <summary>Router: every task of <paramref name="chunk"/> has its outcome, from the worker it was sent to.</summary>
    public void OnChunkCompleted(Chunk chunk)
    {
        if (chunk.Activity is { } activity)
        {
            chunk.Activity = null;
            PoolTracing.Stop(activity);
        }

        ChunkCompleted(chunk);
    }

    /// <inheritdoc cref="OnChunkCompleted"/>
    protected virtual void ChunkCompleted(Chunk chunk)
    {
    }

    /// <summary>The pool was closed: a job that holds back input to bound memory lets it all through.</summary>
    public virtual void OnPoolClosed()
    {
    }

    /// <summary>Ends the job now for its caller (cancelled, abandoned, terminated); its queued tasks are dropped.</summary>
    public void Stop(Exception reason)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        OnStopped(reason);
        if (_activity is { } activity)
        {
            activity.SetStatus(ActivityStatusCode.Error, reason.Message);
        }

        runtime.Dispatcher.Enqueue(this);
        runtime.Dispatcher.CancelRunning(this);
    }

    internal bool TryMarkQueued() => Interlocked.Exchange(ref _queued, 1) == 0;

    internal void ClearQueued() => Volatile.Write(ref _queued, 0);

    protected abstract void OnStopped(Exception reason);

    /// <summary>Router, supervisor, dispatcher: these many more tasks ended. Once per chunk, not per task.</summary>
    protected void Tally(int completed, int failed)
    {
        if (completed != 0)
        {
            runtime.Metrics.Completed.Add(completed);
        }

        if (failed != 0)
        {
            runtime.Metrics.Failed.Add(failed);
        }

        Progress?.OnTasksEnded(completed, failed);
    }

    /// <summary>
    /// Every task pulled has an outcome and no more will be pulled: the pool may shut down. <paramref name="then"/>
    /// completes the call: at once, or after the final progress report when there is one.
    /// </summary>
    protected void Drained(Action? then = null)
    {
        if (Interlocked.Exchange(ref _drained, 1) == 0)
        {
            if (_activity is { } activity)
            {
                PoolTracing.Stop(activity);
            }

            runtime.OnJobDrained(this);
            if (Progress is { } progress)
            {
                progress.Finish(then);
            }
            else
            {
                then?.Invoke();
            }
        }
    }
}

/// <summary>A job with typed arguments and results.</summary>
internal abstract class Job<TArgs, TResult>(PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result)
    : Job(runtime, function)
{
    /// <summary>About how many bytes of arguments one Run frame carries before the rest of its chunk is split off.</summary>
    private const int FrameBudget = 1 << 20;

    protected Codec<TResult> ResultCodec => result;

    public override int ResultBlockCode => ResultBlocks<TResult>.Code;

    public override int WriteArguments(FrameWriter writer, Chunk chunk, out Exception? error)
    {
        ReadOnlySpan<TArgs> values = ((TArgs[])chunk.Items).AsSpan(chunk.ItemsOffset, chunk.Count);
        error = null;
        if (args.FixedSize >= 0)
        {
            args.WriteMany(writer, values);
            return values.Length;
        }

        long start = writer.Length;
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0 && writer.Length - start >= FrameBudget)
            {
                // Large arguments: the rest of the chunk goes in the next frame, so that the worker starts on
                // these while the next ones are being written (and no frame holds a whole chunk of megabytes).
                return i;
            }

            int position = writer.Position;
            try
            {
                args.Write(writer, values[i]);
            }
            catch (Exception e)
            {
                // Any exception from the serializer makes this one task fail, with a message that names it.
                writer.Truncate(position);
                error = Arguments.SerializationError(chunk.FirstIndex + i, values[i], e, "items");
                return i;
            }
        }

        return values.Length;
    }

    public override void OnResults(long first, int count, ref SequenceReader<byte> reader)
    {
        int failed = 0;
        for (int i = 0; i < count; i++)
        {
            TResult value;
            try
            {
                value = result.Read(ref reader);
            }
            catch (Exception e) when (e is not ProtocolException)
            {
                // The codec is past the value: this task fails, the others are read.
                OnError(first + i, Arguments.ResultDecodingError<TResult>(first + i, e));
                failed++;
                continue;
            }

            OnValue(first + i, value);
        }

        Tally(count - failed, failed);
        Account(count);
    }

    public override void OnLateResult(long index, ref SequenceReader<byte> reader, Func<long, Exception> error)
    {
        try
        {
            _ = result.Read(ref reader);
        }
        catch (Exception e) when (e is not ProtocolException)
        {
            // The value is dropped either way; the codec is past it.
        }

        OnFailed(index, 1, error);
    }

    public override void OnFailed(long first, int count, Func<long, Exception> error)
    {
        for (int i = 0; i < count; i++)
        {
            OnError(first + i, error(first + i));
        }

        Tally(0, count);
        Account(count);
    }

    protected abstract void OnValue(long index, TResult value);

    protected abstract void OnError(long index, Exception error);

    /// <summary>These many more tasks have an outcome.</summary>
    protected abstract void Account(int count);
}

/// <summary>The errors a job reports about values, worded for the person who passed them.</summary>
internal static class Arguments
{
    public static ArgumentException SerializationError<T>(long index, T value, Exception e, string parameterName) => new(
        $"Item {index} (a {value?.GetType().FullName ?? typeof(T).FullName}) could not be serialized to send it to a worker: " +
        (ValueAdvice.For(typeof(T), value, "The function's parameter") is { } advice
            ? $"{advice} (the serializer said: {ValueAdvice.Innermost(e).Message})"
            : $"{e.Message} Pass plain data (numbers, strings, arrays, records or classes with public properties), or set ProcessPoolOptions.Serializer to one that handles this type."),
        parameterName,
        e);

    public static InvalidOperationException ResultDecodingError<T>(long index, Exception e) => new(
        $"The result of task {index} could not be deserialized as {typeof(T).FullName}: {e.Message}", e);
}

/// <summary>The block code of <typeparamref name="TResult"/> when it is an array of a block type (found once per type), else -1.</summary>
internal static class ResultBlocks<TResult>
{
    public static readonly int Code = typeof(TResult).IsSZArray && typeof(TResult).GetElementType() is { } element && RawTypes.IsRaw(element) && !element.IsEnum
        ? (int)typeof(RawTypes.BlockCode<>).MakeGenericType(element).GetField(nameof(RawTypes.BlockCode<int>.Code))!.GetValue(null)!
        : -1;
}
