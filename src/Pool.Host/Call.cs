using System.Runtime.CompilerServices;
using Pool.Contracts;
using Pool.Internal;

namespace Pool;

/// <summary>
/// Builds <see cref="Call{TResult}"/>s: a function and its arguments, to run later with
/// <see cref="ProcessPool.Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/> and its
/// variants. Python (joblib): <c>delayed(f)(a, b)</c>. The function and the arguments are checked here, where the call is
/// built, as a pool checks them (with the default serializer): an argument that would not reach a worker intact throws
/// <see cref="ArgumentException"/> from this line, not later from <c>Run</c>.
/// </summary>
/// <example><code>
/// Call&lt;double&gt;[] calls = [.. from a in store1 from b in store2 select Call.Of(Score, a, b)];
/// double[] scores = pool.Run(calls);   // joblib: Parallel(n_jobs=-1)(delayed(score)(a, b) for a in store1 for b in store2)
/// </code></example>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1716", Justification = "joblib's word for it; Visual Basic callers write [Call].")]
public static class Call
{
    private static readonly CodecProvider DefaultCodecs = new(PoolSerializer.Default);
    private static readonly FunctionRegistry DefaultFunctions = new(PoolSerializer.Default);

    /// <summary>The call <paramref name="fn"/>(). Python: <c>delayed(f)()</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot run in a worker (the message says why).</exception>
    public static Call<TResult> Of<TResult>(Func<TResult> fn) =>
        Build<ValueTuple, TResult>(fn, typeof(Func<TResult>), default(ValueTuple), static _ => new Args0());

    /// <summary>The call <paramref name="fn"/>(<paramref name="arg"/>). Python: <c>delayed(f)(a)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or <paramref name="arg"/> cannot be shipped to a worker.</exception>
    public static Call<TResult> Of<T, TResult>(Func<T, TResult> fn, T arg) =>
        Build<T, TResult>(fn, typeof(Func<T, TResult>), arg, static codecs => new Args1<T>(codecs.Get<T>()));

    /// <summary>The call <paramref name="fn"/>(<paramref name="arg1"/>, <paramref name="arg2"/>). Python: <c>delayed(f)(a, b)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped to a worker.</exception>
    public static Call<TResult> Of<T1, T2, TResult>(Func<T1, T2, TResult> fn, T1 arg1, T2 arg2) =>
        Build<(T1, T2), TResult>(fn, typeof(Func<T1, T2, TResult>), (arg1, arg2), static codecs => new Args2<T1, T2>(codecs.Get<T1>(), codecs.Get<T2>()));

    /// <summary>The call <paramref name="fn"/>(<paramref name="arg1"/>, <paramref name="arg2"/>, <paramref name="arg3"/>). Python: <c>delayed(f)(a, b, c)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped to a worker.</exception>
    public static Call<TResult> Of<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, T1 arg1, T2 arg2, T3 arg3) =>
        Build<(T1, T2, T3), TResult>(fn, typeof(Func<T1, T2, T3, TResult>), (arg1, arg2, arg3), static codecs => new Args3<T1, T2, T3>(codecs.Get<T1>(), codecs.Get<T2>(), codecs.Get<T3>()));

    /// <summary>The call <paramref name="fn"/>(<paramref name="arg1"/>, ..., <paramref name="arg4"/>). Python: <c>delayed(f)(a, b, c, d)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped to a worker.</exception>
    public static Call<TResult> Of<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, T1 arg1, T2 arg2, T3 arg3, T4 arg4) =>
        Build<(T1, T2, T3, T4), TResult>(fn, typeof(Func<T1, T2, T3, T4, TResult>), (arg1, arg2, arg3, arg4), static codecs => new Args4<T1, T2, T3, T4>(codecs.Get<T1>(), codecs.Get<T2>(), codecs.Get<T3>(), codecs.Get<T4>()));

    /// <summary>The call of an async function: the worker awaits it. Python: <c>delayed(f)()</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot run in a worker (the message says why).</exception>
    [OverloadResolutionPriority(1)]
    public static Call<TResult> Of<TResult>(Func<Task<TResult>> fn) =>
        Build<ValueTuple, TResult>(fn, typeof(Func<Task<TResult>>), default(ValueTuple), static _ => new Args0());

    /// <summary>The call of an async function with one argument: the worker awaits it. Python: <c>delayed(f)(a)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or <paramref name="arg"/> cannot be shipped to a worker.</exception>
    [OverloadResolutionPriority(1)]
    public static Call<TResult> Of<T, TResult>(Func<T, Task<TResult>> fn, T arg) =>
        Build<T, TResult>(fn, typeof(Func<T, Task<TResult>>), arg, static codecs => new Args1<T>(codecs.Get<T>()));

    /// <summary>The call of an async function with two arguments: the worker awaits it. Python: <c>delayed(f)(a, b)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped to a worker.</exception>
    [OverloadResolutionPriority(1)]
    public static Call<TResult> Of<T1, T2, TResult>(Func<T1, T2, Task<TResult>> fn, T1 arg1, T2 arg2) =>
        Build<(T1, T2), TResult>(fn, typeof(Func<T1, T2, Task<TResult>>), (arg1, arg2), static codecs => new Args2<T1, T2>(codecs.Get<T1>(), codecs.Get<T2>()));

    /// <summary>The default serializer's codec of each argument shape, built once (it depends on the types alone).</summary>
    private static class DefaultArgs<TArgs>
    {
        public static ArgsCodec<TArgs>? Codec;
    }

    private static ArgsCall<TArgs, TResult> Build<TArgs, TResult>(Delegate fn, Type delegateType, TArgs args, Func<CodecProvider, ArgsCodec<TArgs>> codec)
    {
        DefaultFunctions.Get(fn, delegateType, nameof(fn));
        Shipping.CheckArgument(DefaultArgs<TArgs>.Codec ??= codec(DefaultCodecs), args, PoolSerializer.Default, "args");
        return new ArgsCall<TArgs, TResult>(fn, delegateType, args, codec);
    }
}

/// <summary>
/// One call of a function with its arguments, built by <see cref="Call.Of{T, TResult}(Func{T, TResult}, T)"/> and its
/// overloads, run by <see cref="ProcessPool.Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>.
/// Python (joblib): what <c>delayed(f)(a, b)</c> returns. Immutable; one call can be run many times, in any pool.
/// </summary>
/// <typeparam name="TResult">What the function returns (for an async function, what its task yields).</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1716", Justification = "joblib's word for it; Visual Basic callers write [Call].")]
public abstract class Call<TResult>
{
    private protected Call(Delegate function, Type delegateType)
    {
        Function = function;
        DelegateType = delegateType;
    }

    /// <summary>The function to call.</summary>
    public Delegate Function { get; }

    internal Type DelegateType { get; }

    /// <summary>A new, empty group for the calls of this function (they share a codec and a job).</summary>
    internal abstract CallGroup<TResult> NewGroup();

    /// <summary>"Score(3, 4)": the function's name and its arguments.</summary>
    public override string ToString() => $"{Function.Method.Name}{ArgumentsText}";

    private protected abstract string ArgumentsText { get; }
}

/// <summary>A call whose arguments travel as one <typeparamref name="TArgs"/> (a value, or a tuple of them).</summary>
internal sealed class ArgsCall<TArgs, TResult>(Delegate function, Type delegateType, TArgs args, Func<CodecProvider, ArgsCodec<TArgs>> codec)
    : Call<TResult>(function, delegateType)
{
    public TArgs Args => args;

    public Func<CodecProvider, ArgsCodec<TArgs>> Codec => codec;

    private protected override string ArgumentsText => args is ITuple ? $"{args}" : $"({args})";

    internal override CallGroup<TResult> NewGroup() => new CallGroup<TArgs, TResult>(this);
}
