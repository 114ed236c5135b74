using System.Buffers;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// A job over an input that is all there when the call is made (Map, StarMap, Apply): fixed chunks, a
/// result array written in place, and one completion when every task has an outcome.
/// </summary>
internal abstract class IndexedJob<TArgs, TResult>(
    PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result, TArgs[] inputs, int chunkSize)
    : Job<TArgs, TResult>(runtime, function, args, result)
{
    private readonly TResult[] _results = new TResult[inputs.Length];
    private Exception?[]? _errors;
    private int _remaining = inputs.Length;
    private int _next;

    public override bool HasChunks => !IsStopped && _next < inputs.Length;

    public override long? Total => inputs.Length;

    public override Chunk? TryTakeChunk()
    {
        if (IsStopped || _next >= inputs.Length)
        {
            return null;
        }

        int count = Math.Min(chunkSize, inputs.Length - _next);
        var chunk = new Chunk(this, _next, count, inputs, _next);
        _next += count;
        return chunk;
    }

    public override void DropPending()
    {
        int dropped = inputs.Length - _next;
        _next = inputs.Length;
        if (dropped > 0)
        {
            Runtime.Metrics.Queued.Add(-dropped);
            Account(dropped);
        }
    }

    public override void OnResults(long first, int count, ref SequenceReader<byte> reader)
    {
        if (ResultCodec.FixedSize > 0)
        {
            ResultCodec.ReadMany(ref reader, _results.AsSpan((int)first, count));
            Tally(count, 0);
            Account(count);
            return;
        }

        base.OnResults(first, count, ref reader);
    }

    /// <summary>Every task has an outcome. <paramref name="errors"/> is null when none failed.</summary>
    protected abstract void OnCompleted(TResult[] results, Exception?[]? errors);

    protected override void OnValue(long index, TResult value) => _results[index] = value;

    protected override void OnError(long index, Exception error)
    {
        Exception?[] errors = Volatile.Read(ref _errors)
            ?? Interlocked.CompareExchange(ref _errors, new Exception?[inputs.Length], null)
            ?? _errors!;
        errors[index] = error;
    }

    protected override void Account(int count)
    {
        if (Interlocked.Add(ref _remaining, -count) != 0)
        {
            return;
        }

        Drained(Complete);
    }

    private void Complete()
    {
        if (!IsStopped)
        {
            OnCompleted(_results, Volatile.Read(ref _errors));
        }
    }

    protected static Exception? FirstError(Exception?[]? errors) => errors is null ? null : Array.Find(errors, e => e is not null);
}

/// <summary><c>Map</c> and <c>StarMap</c>: all values in input order, or the first failure in input order
/// once every task has finished.</summary>
internal sealed class MapJob<TArgs, TResult>(
    PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result, TArgs[] inputs, int chunkSize)
    : IndexedJob<TArgs, TResult>(runtime, function, args, result, inputs, chunkSize)
{
    private readonly TaskCompletionSource<TResult[]> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<TResult[]> Task => _completion.Task;

    protected override void OnCompleted(TResult[] results, Exception?[]? errors)
    {
        if (FirstError(errors) is { } error)
        {
            _completion.TrySetException(error);
        }
        else
        {
            _completion.TrySetResult(results);
        }
    }

    protected override void OnStopped(Exception reason) => Completions.Fail(_completion, reason);
}

/// <summary><c>MapOutcomes</c>: every task's value or exception.</summary>
internal sealed class MapOutcomesJob<TArgs, TResult>(
    PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result, TArgs[] inputs, int chunkSize)
    : IndexedJob<TArgs, TResult>(runtime, function, args, result, inputs, chunkSize)
{
    private readonly TaskCompletionSource<Outcome<TResult>[]> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<Outcome<TResult>[]> Task => _completion.Task;

    protected override void OnCompleted(TResult[] results, Exception?[]? errors)
    {
        var outcomes = new Outcome<TResult>[results.Length];
        for (int i = 0; i < outcomes.Length; i++)
        {
            outcomes[i] = errors?[i] is { } error ? new Outcome<TResult>(i, error) : new Outcome<TResult>(i, results[i]);
        }

        _completion.TrySetResult(outcomes);
    }

    protected override void OnStopped(Exception reason) => Completions.Fail(_completion, reason);
}

/// <summary><c>Apply</c> and <c>ApplyAsync</c>: one task, completing an <see cref="AsyncResult{T}"/>.</summary>
internal sealed class ApplyJob<TArgs, TResult>(
    PoolRuntime runtime, ShippedFunction function, ArgsCodec<TArgs> args, Codec<TResult> result, TArgs input, AsyncResult<TResult> asyncResult)
    : IndexedJob<TArgs, TResult>(runtime, function, args, result, [input], 1)
{
    protected override void OnCompleted(TResult[] results, Exception?[]? errors)
    {
        if (errors?[0] is { } error)
        {
            asyncResult.SetError(error, stopped: false);
        }
        else
        {
            asyncResult.SetResult(results[0]);
        }
    }

    protected override void OnStopped(Exception reason) => asyncResult.SetError(reason, stopped: true);
}

/// <summary>Completing a task with a stop reason: cancellation cancels, anything else faults.</summary>
internal static class Completions
{
    public static void Fail<T>(TaskCompletionSource<T> completion, Exception reason)
    {
        if (reason is OperationCanceledException canceled)
        {
            completion.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            completion.TrySetException(reason);
        }
    }
}
