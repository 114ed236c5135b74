using System.Buffers;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>A function reference bound once to a typed delegate, with the codecs of its arguments and result.</summary>
internal abstract class BoundFunction(string displayName)
{
    public string DisplayName => displayName;

    /// <summary>
    /// Decodes a <see cref="MessageType.Run"/> chunk's arguments (on the reader thread), showing each task in
    /// <paramref name="cell"/>'s decoding slot while its arguments are read (user code may run there, and hang or crash).
    /// </summary>
    public abstract ChunkWork Decode(in RunHeader header, ref SequenceReader<byte> reader, ProgressCell cell);

    /// <summary>Runs once with the arguments of one task (the initializer); returns what it threw, or null.</summary>
    public abstract ValueTask<Exception?> InvokeOnceAsync(byte[] arguments);
}

/// <summary>
/// <typeparamref name="TArgs"/> is the argument pack (see <see cref="ArgsCodec{TArgs}"/>),
/// <typeparamref name="TResult"/> the value the host receives (a <c>Task&lt;R&gt;</c>'s R).
/// Exactly one of the two calls is set.
/// </summary>
internal sealed class BoundFunction<TArgs, TResult>(
    string displayName,
    ArgsCodec<TArgs> args,
    Codec<TResult> result,
    Func<TArgs, CancellationToken, TResult>? syncCall,
    Func<TArgs, CancellationToken, ValueTask<TResult>>? asyncCall,
    bool takesToken,
    Func<TArgs, TResult>? directCall = null) : BoundFunction(displayName)
{
    /// <summary>The user's own delegate when it is already <c>Func&lt;T, R&gt;</c>: called with no adapter around it.</summary>
    public Func<TArgs, TResult>? DirectCall => directCall;

    public Codec<TResult> Result => result;

    public Func<TArgs, CancellationToken, TResult>? SyncCall => syncCall;

    public Func<TArgs, CancellationToken, ValueTask<TResult>>? AsyncCall => asyncCall;

    public bool TakesToken => takesToken;

    public override ChunkWork Decode(in RunHeader header, ref SequenceReader<byte> reader, ProgressCell cell)
    {
        int count = header.Count;
        TArgs[] values = ArrayPool<TArgs>.Shared.Rent(Math.Max(count, 1));
        ExceptionDispatchInfo?[]? errors = null;
        long[]? decodeTicks = null;
        if (args is Args1<TArgs> single && single.FixedSize > 0)
        {
            // Numbers copied from the frame: no user code runs, nothing to show.
            single.Codec.ReadMany(ref reader, values.AsSpan(0, count));
        }
        else
        {
            // A deadline counts each task's decoding (see ChunkWork.BeforeTask): its start is taken only then.
            bool timed = (header.Flags & RunFlags.Timed) != 0;
            decodeTicks = timed ? ArrayPool<long>.Shared.Rent(count) : null;
            long start = timed ? Stopwatch.GetTimestamp() : 0;
            try
            {
                for (int i = 0; i < count; i++)
                {
                    cell.EnterDecoding(header.ChunkId, i, start);
                    try
                    {
                        values[i] = args.Read(ref reader);
                    }
                    catch (Exception e) when (e is not ProtocolException)
                    {
                        // The reader is past this task's arguments: the task fails, the chunk goes on.
                        errors ??= new ExceptionDispatchInfo?[count];
                        errors[i] = ExceptionDispatchInfo.Capture(ArgumentDecodingError(i, e));
                    }

                    if (decodeTicks is not null)
                    {
                        long end = Stopwatch.GetTimestamp();
                        decodeTicks[i] = end - start;
                        start = end;
                    }
                }
            }
            finally
            {
                cell.LeaveDecoding();
            }
        }

        return new ChunkWork<TArgs, TResult>(this, header, values, errors, decodeTicks);
    }

    public override async ValueTask<Exception?> InvokeOnceAsync(byte[] arguments)
    {
        try
        {
            TArgs values = ReadOne(arguments);
            if (syncCall is not null)
            {
                syncCall(values, CancellationToken.None);
            }
            else
            {
                await asyncCall!(values, CancellationToken.None).ConfigureAwait(false);
            }

            return null;
        }
        catch (Exception e)
        {
            // Reported to the host as the initializer's failure.
            return e;
        }
    }

    private TArgs ReadOne(byte[] arguments)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(arguments));
        return args.Read(ref reader);
    }

    private InvalidOperationException ArgumentDecodingError(int index, Exception e) => new InvalidOperationException(
        $"The worker could not decode the arguments of task {index} of a chunk for {DisplayName}: {e.Message}", e);
}

/// <summary>
/// Builds a <see cref="BoundFunction"/> from a delegate type of the shape the host's API accepts:
/// <c>Func&lt;T1..T4, [CancellationToken], R | Task&lt;R&gt; | ValueTask&lt;R&gt;&gt;</c>.
/// Reflection runs here, once per function; the per-task path only invokes delegates.
/// </summary>
internal static class BoundFunctions
{
    public static BoundFunction Create(Type delegateType, Delegate function, CodecProvider codecs, string displayName)
    {
        FunctionShape shape = FunctionShape.Of(delegateType);
        Type pack = ArgsCodecs.PackType(shape.Parameters);
        object argsCodec = ArgsCodecs.Create(codecs, shape.Parameters);
        object resultCodec = codecs.Get(shape.Result);

        bool isVoid = shape.Kind == ReturnKind.Void;
        // A function returning a bare Task or ValueTask goes through the value adapter with that task as its value.
        string adapter = (isVoid ? "V" : "A") + shape.Parameters.Length + (shape.TakesToken ? "T" : string.Empty);
        MethodInfo adapterMethod = typeof(Calls).GetMethod(adapter)
            ?? throw new NotSupportedException($"{delegateType} is not a shape the pool calls.");
        Type[] adapterTypes = isVoid ? shape.Parameters : [.. shape.Parameters, shape.Returned];
        object call = (adapterTypes.Length == 0 ? adapterMethod : adapterMethod.MakeGenericMethod(adapterTypes)).Invoke(null, [function])!;

        string factory = shape.Kind switch
        {
            ReturnKind.Value or ReturnKind.Void => nameof(Sync),
            ReturnKind.Task => nameof(FromTask),
            ReturnKind.BareTask => nameof(FromBareTask),
            ReturnKind.BareValueTask => nameof(FromBareValueTask),
            _ => nameof(FromValueTask),
        };
        Type[] factoryTypes = shape.Kind is ReturnKind.BareTask or ReturnKind.BareValueTask ? [pack] : [pack, shape.Result];

        return (BoundFunction)typeof(BoundFunctions).GetMethod(factory)!
            .MakeGenericMethod(factoryTypes)
            .Invoke(null, factory == nameof(Sync)
                ? [displayName, argsCodec, resultCodec, call, shape.TakesToken, function]
                : [displayName, argsCodec, resultCodec, call, shape.TakesToken])!;
    }

    // The one-argument function of a value (the common tiny task) is also kept as it is, to be called without the adapter.
    public static BoundFunction Sync<TArgs, TResult>(string name, ArgsCodec<TArgs> args, Codec<TResult> result, Func<TArgs, CancellationToken, TResult> call, bool token, Delegate function) =>
        new BoundFunction<TArgs, TResult>(name, args, result, call, null, token, function as Func<TArgs, TResult>);

    public static BoundFunction FromTask<TArgs, TResult>(string name, ArgsCodec<TArgs> args, Codec<TResult> result, Func<TArgs, CancellationToken, Task<TResult>> call, bool token) =>
        new BoundFunction<TArgs, TResult>(name, args, result, null, (a, ct) => new ValueTask<TResult>(call(a, ct)), token);

    public static BoundFunction FromBareTask<TArgs>(string name, ArgsCodec<TArgs> args, Codec<ValueTuple> result, Func<TArgs, CancellationToken, Task> call, bool token) =>
        new BoundFunction<TArgs, ValueTuple>(name, args, result, null, async (a, ct) =>
        {
            await call(a, ct).ConfigureAwait(false);
            return default;
        }, token);

    public static BoundFunction FromBareValueTask<TArgs>(string name, ArgsCodec<TArgs> args, Codec<ValueTuple> result, Func<TArgs, CancellationToken, ValueTask> call, bool token) =>
        new BoundFunction<TArgs, ValueTuple>(name, args, result, null, async (a, ct) =>
        {
            await call(a, ct).ConfigureAwait(false);
            return default;
        }, token);

    public static BoundFunction FromValueTask<TArgs, TResult>(string name, ArgsCodec<TArgs> args, Codec<TResult> result, Func<TArgs, CancellationToken, ValueTask<TResult>> call, bool token) =>
        new BoundFunction<TArgs, TResult>(name, args, result, null, call, token);
}

/// <summary>What a function returns.</summary>
internal enum ReturnKind
{
    Value,
    Void,
    Task,
    ValueTask,

    /// <summary>A bare <see cref="System.Threading.Tasks.Task"/>: awaited, and nothing is sent back.</summary>
    BareTask,

    /// <summary>A bare <see cref="System.Threading.Tasks.ValueTask"/>: awaited, and nothing is sent back.</summary>
    BareValueTask,
}

/// <summary>The parts of a <c>Func&lt;...&gt;</c> type that decide how a task is called.</summary>
internal sealed record FunctionShape(Type[] Parameters, bool TakesToken, Type Returned, ReturnKind Kind, Type Result)
{
    public static FunctionShape Of(Type delegateType)
    {
        if (delegateType == typeof(Action) || (delegateType.IsGenericType && delegateType.GetGenericTypeDefinition().FullName!.StartsWith("System.Action`", StringComparison.Ordinal)))
        {
            Type[] actionParameters = delegateType.IsGenericType ? delegateType.GetGenericArguments() : [];
            bool actionToken = actionParameters.Length > 0 && actionParameters[^1] == typeof(CancellationToken);
            return new FunctionShape(actionToken ? actionParameters[..^1] : actionParameters, actionToken, typeof(void), ReturnKind.Void, typeof(ValueTuple));
        }

        if (!delegateType.IsGenericType || !delegateType.GetGenericTypeDefinition().FullName!.StartsWith("System.Func`", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"{delegateType} is not a Func<...> or an Action<...>.");
        }

        Type[] arguments = delegateType.GetGenericArguments();
        Type returned = arguments[^1];
        Type[] parameters = arguments[..^1];
        bool token = parameters.Length > 0 && parameters[^1] == typeof(CancellationToken);
        if (token)
        {
            parameters = parameters[..^1];
        }

        if (returned.IsGenericType && returned.GetGenericTypeDefinition() == typeof(Task<>))
        {
            return new FunctionShape(parameters, token, returned, ReturnKind.Task, returned.GetGenericArguments()[0]);
        }

        if (returned.IsGenericType && returned.GetGenericTypeDefinition() == typeof(ValueTask<>))
        {
            return new FunctionShape(parameters, token, returned, ReturnKind.ValueTask, returned.GetGenericArguments()[0]);
        }

        if (returned == typeof(Task) || returned == typeof(ValueTask))
        {
            return new FunctionShape(parameters, token, returned, returned == typeof(Task) ? ReturnKind.BareTask : ReturnKind.BareValueTask, typeof(ValueTuple));
        }

        return new FunctionShape(parameters, token, returned, ReturnKind.Value, returned);
    }
}

/// <summary>Adapters from the user's delegate to one call shape: (argument pack, token) → returned value.</summary>
internal static class Calls
{
    public static Func<ValueTuple, CancellationToken, TRet> A0<TRet>(Func<TRet> f) => (_, _) => f();

    public static Func<ValueTuple, CancellationToken, TRet> A0T<TRet>(Func<CancellationToken, TRet> f) => (_, ct) => f(ct);

    public static Func<T1, CancellationToken, TRet> A1<T1, TRet>(Func<T1, TRet> f) => (a, _) => f(a);

    public static Func<T1, CancellationToken, TRet> A1T<T1, TRet>(Func<T1, CancellationToken, TRet> f) => f;

    public static Func<(T1, T2), CancellationToken, TRet> A2<T1, T2, TRet>(Func<T1, T2, TRet> f) => (a, _) => f(a.Item1, a.Item2);

    public static Func<(T1, T2), CancellationToken, TRet> A2T<T1, T2, TRet>(Func<T1, T2, CancellationToken, TRet> f) => (a, ct) => f(a.Item1, a.Item2, ct);

    public static Func<(T1, T2, T3), CancellationToken, TRet> A3<T1, T2, T3, TRet>(Func<T1, T2, T3, TRet> f) => (a, _) => f(a.Item1, a.Item2, a.Item3);

    public static Func<(T1, T2, T3), CancellationToken, TRet> A3T<T1, T2, T3, TRet>(Func<T1, T2, T3, CancellationToken, TRet> f) => (a, ct) => f(a.Item1, a.Item2, a.Item3, ct);

    public static Func<(T1, T2, T3, T4), CancellationToken, TRet> A4<T1, T2, T3, T4, TRet>(Func<T1, T2, T3, T4, TRet> f) => (a, _) => f(a.Item1, a.Item2, a.Item3, a.Item4);

    public static Func<(T1, T2, T3, T4), CancellationToken, TRet> A4T<T1, T2, T3, T4, TRet>(Func<T1, T2, T3, T4, CancellationToken, TRet> f) => (a, ct) => f(a.Item1, a.Item2, a.Item3, a.Item4, ct);

    public static Func<ValueTuple, CancellationToken, ValueTuple> V0(Action f) => (_, _) =>
    {
        f();
        return default;
    };

    public static Func<ValueTuple, CancellationToken, ValueTuple> V0T(Action<CancellationToken> f) => (_, ct) =>
    {
        f(ct);
        return default;
    };

    public static Func<T1, CancellationToken, ValueTuple> V1T<T1>(Action<T1, CancellationToken> f) => (a, ct) =>
    {
        f(a, ct);
        return default;
    };

    public static Func<(T1, T2), CancellationToken, ValueTuple> V2T<T1, T2>(Action<T1, T2, CancellationToken> f) => (a, ct) =>
    {
        f(a.Item1, a.Item2, ct);
        return default;
    };

    public static Func<(T1, T2, T3), CancellationToken, ValueTuple> V3T<T1, T2, T3>(Action<T1, T2, T3, CancellationToken> f) => (a, ct) =>
    {
        f(a.Item1, a.Item2, a.Item3, ct);
        return default;
    };

    public static Func<(T1, T2, T3, T4), CancellationToken, ValueTuple> V4T<T1, T2, T3, T4>(Action<T1, T2, T3, T4, CancellationToken> f) => (a, ct) =>
    {
        f(a.Item1, a.Item2, a.Item3, a.Item4, ct);
        return default;
    };

    public static Func<T1, CancellationToken, ValueTuple> V1<T1>(Action<T1> f) => (a, _) =>
    {
        f(a);
        return default;
    };

    public static Func<(T1, T2), CancellationToken, ValueTuple> V2<T1, T2>(Action<T1, T2> f) => (a, _) =>
    {
        f(a.Item1, a.Item2);
        return default;
    };

    public static Func<(T1, T2, T3), CancellationToken, ValueTuple> V3<T1, T2, T3>(Action<T1, T2, T3> f) => (a, _) =>
    {
        f(a.Item1, a.Item2, a.Item3);
        return default;
    };

    public static Func<(T1, T2, T3, T4), CancellationToken, ValueTuple> V4<T1, T2, T3, T4>(Action<T1, T2, T3, T4> f) => (a, _) =>
    {
        f(a.Item1, a.Item2, a.Item3, a.Item4);
        return default;
    };
}

/// <summary>Returns rented arrays, cleared when they hold references.</summary>
internal static class Rented
{
    public static void Return<T>(T[] array) =>
        ArrayPool<T>.Shared.Return(array, RuntimeHelpers.IsReferenceOrContainsReferences<T>());
}
