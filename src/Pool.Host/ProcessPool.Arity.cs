using Pool.Contracts;
using Pool.Internal;

namespace Pool;

/// <content>The overloads for functions of two to four arguments: <c>StarMap</c> over tuples, <c>Map</c>
/// over several sequences zipped (as pathos does), and <c>Apply</c> with several arguments.</content>
public sealed partial class ProcessPool
{
    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of each tuple, in the workers; results in input order.
    /// Python: <c>Pool.starmap</c>. Otherwise as <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first item cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] StarMap<T1, T2, TResult>(Func<T1, T2, TResult> fn, IEnumerable<(T1, T2)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(StarMapAsync(fn, items, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="StarMap{T1, T2, TResult}(Func{T1, T2, TResult}, IEnumerable{ValueTuple{T1, T2}}, int?, TimeSpan?, CancellationToken)"/>
    /// <summary>As <c>StarMap</c>, without blocking. Python: <c>Pool.starmap_async</c>.</summary>
    public Task<TResult[]> StarMapAsync<T1, T2, TResult>(Func<T1, T2, TResult> fn, IEnumerable<(T1, T2)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2), TResult>(Ship(fn, typeof(Func<T1, T2, TResult>)), new Args2<T1, T2>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>()), Materialize(items), chunkSize, nameof(StarMap), taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of 2 sequences taken in step, stopping at the shortest,
    /// as pathos's <c>map(f, xs, ys)</c> and Python's built-in <c>map</c> do; results in input order.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first items cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] Map<T1, T2, TResult>(Func<T1, T2, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(MapAsync(fn, xs, ys, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="Map{T1, T2, TResult}(Func{T1, T2, TResult}, IEnumerable{T1}, IEnumerable{T2}, int?, TimeSpan?, CancellationToken)"/>
    public Task<TResult[]> MapAsync<T1, T2, TResult>(Func<T1, T2, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2), TResult>(Ship(fn, typeof(Func<T1, T2, TResult>)), new Args2<T1, T2>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>()), Zip(xs, ys), chunkSize, nameof(Map), taskTimeout, cancellationToken);

    /// <summary>Runs <paramref name="fn"/> with 2 arguments in a worker and returns its result. Python: <c>Pool.apply(f, args)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">The function threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">The worker died running it.</exception>
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, TResult> fn, T1 arg1, T2 arg2, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, TResult>)), new Args2<T1, T2>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>()), (arg1, arg2), default(Action<TResult>), null, taskTimeout, cancellationToken, waits: true).Get();

    /// <inheritdoc cref="ApplyAsync{T, TResult}(Func{T, TResult}, T, Action{TResult}?, Action{Exception}?, TimeSpan?, CancellationToken)"/>
    public AsyncResult<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, TResult> fn, T1 arg1, T2 arg2, Action<TResult>? callback = null, Action<Exception>? errorCallback = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, TResult>)), new Args2<T1, T2>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>()), (arg1, arg2), callback, errorCallback, taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of each tuple, in the workers; results in input order.
    /// Python: <c>Pool.starmap</c>. Otherwise as <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first item cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] StarMap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(StarMapAsync(fn, items, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="StarMap{T1, T2, T3, TResult}(Func{T1, T2, T3, TResult}, IEnumerable{ValueTuple{T1, T2, T3}}, int?, TimeSpan?, CancellationToken)"/>
    /// <summary>As <c>StarMap</c>, without blocking. Python: <c>Pool.starmap_async</c>.</summary>
    public Task<TResult[]> StarMapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3), TResult>(Ship(fn, typeof(Func<T1, T2, T3, TResult>)), new Args3<T1, T2, T3>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>()), Materialize(items), chunkSize, nameof(StarMap), taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of 3 sequences taken in step, stopping at the shortest,
    /// as pathos's <c>map(f, xs, ys)</c> and Python's built-in <c>map</c> do; results in input order.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first items cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] Map<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(MapAsync(fn, xs, ys, zs, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="Map{T1, T2, T3, TResult}(Func{T1, T2, T3, TResult}, IEnumerable{T1}, IEnumerable{T2}, IEnumerable{T3}, int?, TimeSpan?, CancellationToken)"/>
    public Task<TResult[]> MapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3), TResult>(Ship(fn, typeof(Func<T1, T2, T3, TResult>)), new Args3<T1, T2, T3>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>()), Zip(xs, ys, zs), chunkSize, nameof(Map), taskTimeout, cancellationToken);

    /// <summary>Runs <paramref name="fn"/> with 3 arguments in a worker and returns its result. Python: <c>Pool.apply(f, args)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">The function threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">The worker died running it.</exception>
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, T1 arg1, T2 arg2, T3 arg3, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, T3, TResult>)), new Args3<T1, T2, T3>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>()), (arg1, arg2, arg3), default(Action<TResult>), null, taskTimeout, cancellationToken, waits: true).Get();

    /// <inheritdoc cref="ApplyAsync{T, TResult}(Func{T, TResult}, T, Action{TResult}?, Action{Exception}?, TimeSpan?, CancellationToken)"/>
    public AsyncResult<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> fn, T1 arg1, T2 arg2, T3 arg3, Action<TResult>? callback = null, Action<Exception>? errorCallback = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, T3, TResult>)), new Args3<T1, T2, T3>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>()), (arg1, arg2, arg3), callback, errorCallback, taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of each tuple, in the workers; results in input order.
    /// Python: <c>Pool.starmap</c>. Otherwise as <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first item cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] StarMap<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, IEnumerable<(T1, T2, T3, T4)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(StarMapAsync(fn, items, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="StarMap{T1, T2, T3, T4, TResult}(Func{T1, T2, T3, T4, TResult}, IEnumerable{ValueTuple{T1, T2, T3, T4}}, int?, TimeSpan?, CancellationToken)"/>
    /// <summary>As <c>StarMap</c>, without blocking. Python: <c>Pool.starmap_async</c>.</summary>
    public Task<TResult[]> StarMapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, IEnumerable<(T1, T2, T3, T4)> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3, T4), TResult>(Ship(fn, typeof(Func<T1, T2, T3, T4, TResult>)), new Args4<T1, T2, T3, T4>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>(), _runtime.Codecs.Get<T4>()), Materialize(items), chunkSize, nameof(StarMap), taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to the elements of 4 sequences taken in step, stopping at the shortest,
    /// as pathos's <c>map(f, xs, ys)</c> and Python's built-in <c>map</c> do; results in input order.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first items cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] Map<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs, IEnumerable<T4> ws, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(MapAsync(fn, xs, ys, zs, ws, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="Map{T1, T2, T3, T4, TResult}(Func{T1, T2, T3, T4, TResult}, IEnumerable{T1}, IEnumerable{T2}, IEnumerable{T3}, IEnumerable{T4}, int?, TimeSpan?, CancellationToken)"/>
    public Task<TResult[]> MapAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs, IEnumerable<T4> ws, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3, T4), TResult>(Ship(fn, typeof(Func<T1, T2, T3, T4, TResult>)), new Args4<T1, T2, T3, T4>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>(), _runtime.Codecs.Get<T4>()), Zip(xs, ys, zs, ws), chunkSize, nameof(Map), taskTimeout, cancellationToken);

    /// <summary>Runs <paramref name="fn"/> with 4 arguments in a worker and returns its result. Python: <c>Pool.apply(f, args)</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or an argument cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">The function threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">The worker died running it.</exception>
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, T1 arg1, T2 arg2, T3 arg3, T4 arg4, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, T3, T4, TResult>)), new Args4<T1, T2, T3, T4>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>(), _runtime.Codecs.Get<T4>()), (arg1, arg2, arg3, arg4), default(Action<TResult>), null, taskTimeout, cancellationToken, waits: true).Get();

    /// <inheritdoc cref="ApplyAsync{T, TResult}(Func{T, TResult}, T, Action{TResult}?, Action{Exception}?, TimeSpan?, CancellationToken)"/>
    public AsyncResult<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> fn, T1 arg1, T2 arg2, T3 arg3, T4 arg4, Action<TResult>? callback = null, Action<Exception>? errorCallback = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T1, T2, T3, T4, TResult>)), new Args4<T1, T2, T3, T4>(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>(), _runtime.Codecs.Get<T4>()), (arg1, arg2, arg3, arg4), callback, errorCallback, taskTimeout, cancellationToken);

    private Args2<T1, T2> Args<T1, T2>() => new(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>());

    private Args3<T1, T2, T3> Args<T1, T2, T3>() => new(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>());

    private Args4<T1, T2, T3, T4> Args<T1, T2, T3, T4>() => new(_runtime.Codecs.Get<T1>(), _runtime.Codecs.Get<T2>(), _runtime.Codecs.Get<T3>(), _runtime.Codecs.Get<T4>());

    // Zipped lazily, as Python's zip: it stops at the shortest, so the others may be endless (pathos's
    // map(f, xs, itertools.repeat(c))). Each sequence is read once, in step with the others.
    private static (T1, T2)[] Zip<T1, T2>(IEnumerable<T1> xs, IEnumerable<T2> ys) =>
        [.. NotNull(xs, nameof(xs)).Zip(NotNull(ys, nameof(ys)))];

    private static (T1, T2, T3)[] Zip<T1, T2, T3>(IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs) =>
        [.. NotNull(xs, nameof(xs)).Zip(NotNull(ys, nameof(ys)), NotNull(zs, nameof(zs)))];

    private static (T1, T2, T3, T4)[] Zip<T1, T2, T3, T4>(IEnumerable<T1> xs, IEnumerable<T2> ys, IEnumerable<T3> zs, IEnumerable<T4> ws) =>
        [.. NotNull(xs, nameof(xs)).Zip(NotNull(ys, nameof(ys)), NotNull(zs, nameof(zs))).Zip(NotNull(ws, nameof(ws)), static (xyz, w) => (xyz.First, xyz.Second, xyz.Third, w))];

    private static IEnumerable<T> NotNull<T>(IEnumerable<T> items, string name) => items ?? throw new ArgumentNullException(name);
}
