using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Pool;

/// <content>
/// Guards for functions of more parameters than the overloads take (four, and a <see cref="CancellationToken"/>
/// last). Without them the compiler answers such a call with CS0411 naming a two-argument overload that has nothing
/// to do with it; with them, it is an error (CS0619) that says what to do. They are the last resort of overload
/// resolution (priority -100), hidden from IntelliSense, and never run.
/// </content>
public sealed partial class ProcessPool
{
    private const string TooMany =
        "No overload of ProcessPool takes this function with these items or arguments. The pool's calls take functions of up to " +
        "4 parameters (and a CancellationToken last), returning a value, nothing, a Task or a ValueTask, with items or arguments of " +
        "the parameters' types. For more parameters, take one record or tuple: pool.StarMap(((int A, int B, int C, int D, int E) t) => " +
        "F(t.A, t.B, t.C, t.D, t.E), items) or pool.Map(F, records).";

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public object StarMap(Delegate fn, object items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException(TooMany);

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public Task StarMapAsync(Delegate fn, object items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException(TooMany);

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public object Map(Delegate fn, object xs, object ys, object zs, object ws, object vs, params object[] more) =>
        throw new NotSupportedException(TooMany);

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public Task MapAsync(Delegate fn, object xs, object ys, object zs, object ws, object vs, params object[] more) =>
        throw new NotSupportedException(TooMany);

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public object Apply(Delegate fn, object? arg1, object? arg2, object? arg3, object? arg4, object? arg5, params object?[] more) =>
        throw new NotSupportedException(TooMany);

    /// <summary>Not callable: see the compiler's message.</summary>
    [Obsolete(TooMany, error: true)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    [OverloadResolutionPriority(-100)]
    public Task ApplyAsync(Delegate fn, object? arg1, object? arg2, object? arg3, object? arg4, object? arg5, params object?[] more) =>
        throw new NotSupportedException(TooMany);
}
