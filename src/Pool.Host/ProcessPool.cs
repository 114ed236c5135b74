using Pool.Contracts;
using Pool.Internal;

namespace Pool;

/// <summary>
/// A pool of worker processes that run your functions, as Python's <c>multiprocessing.Pool</c>:
/// <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>,
/// <see cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>,
/// <see cref="ImapUnordered{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>,
/// <see cref="StarMap{T1, T2, TResult}(Func{T1, T2, TResult}, IEnumerable{ValueTuple{T1, T2}}, int?, TimeSpan?, CancellationToken)"/>,
/// <see cref="Apply{T, TResult}(Func{T, TResult}, T, TimeSpan?, CancellationToken)"/>,
/// <see cref="ApplyAsync{T, TResult}(Func{T, TResult}, T, Action{TResult}?, Action{Exception}?, TimeSpan?, CancellationToken)"/>,
/// <see cref="Close"/>, <see cref="Join()"/>, <see cref="Terminate"/>; joblib's list of different calls as
/// <see cref="Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>, and a pool for the whole
/// process as <see cref="Shared"/>.
/// A function is shipped by reference (its method, not its code); its target object, if any (a closure's
/// captured variables, the object of an instance method), its arguments and its results travel by value,
/// through <see cref="ProcessPoolOptions.Serializer"/>. Every call also takes async functions and functions
/// that take a <see cref="CancellationToken"/> last (ProcessPool.Shapes.cs). Every method is safe to call
/// from many threads.
/// <see cref="Dispose"/> terminates the pool, as leaving Python's <c>with Pool() as p:</c> block does. A pool that is
/// dropped without <see cref="Dispose"/> is terminated when the garbage collector finalizes it, as CPython's pool is
/// (a pending call keeps its pool alive until it ends).
/// </summary>
public sealed partial class ProcessPool : IDisposable, IAsyncDisposable
{
    private readonly PoolRuntime _runtime;

    // Owns the workers: terminates them when no ProcessPool and no pending call refers to it any more.
    private readonly PoolOwner _owner;

    // The progress of the calls made through this instance (see WithProgress); null: the pool's option.
    private readonly IProgress<PoolProgress>? _progress;

    /// <summary>Starts one worker per core and waits until they are ready. Python: <c>Pool()</c>.</summary>
    /// <exception cref="WorkerStartException">The workers could not be started; the message says what was tried.</exception>
    public ProcessPool()
        : this(new ProcessPoolOptions())
    {
    }

    /// <summary>Starts <paramref name="workers"/> workers (negative counts back from the core count). Python: <c>Pool(processes)</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="workers"/> is 0 or below minus the core count.</exception>
    /// <exception cref="WorkerStartException">The workers could not be started.</exception>
    public ProcessPool(int workers)
        : this(new ProcessPoolOptions { Workers = workers })
    {
    }

    /// <summary>Starts a pool as <paramref name="options"/> say, and waits until its workers are ready.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is invalid.</exception>
    /// <exception cref="WorkerStartException">The workers could not be started.</exception>
    public ProcessPool(ProcessPoolOptions options)
        : this(PoolRuntime.StartAsync(options ?? throw new ArgumentNullException(nameof(options)), CancellationToken.None).GetAwaiter().GetResult())
    {
    }

    private ProcessPool(PoolRuntime runtime)
    {
        _runtime = runtime;
        _owner = new PoolOwner(runtime);
    }

    private ProcessPool(ProcessPool pool, IProgress<PoolProgress> progress)
    {
        _runtime = pool._runtime;
        _owner = pool._owner;
        _progress = progress;
    }

    /// <summary>
    /// The same pool, whose calls report their progress to <paramref name="progress"/>: each call gets its own reports
    /// (<see cref="PoolProgress.CallId"/>), with <see cref="PoolProgress.Total"/> when the input's count is known
    /// without enumerating it (an array or a collection, for <c>Imap</c> too), at most once per
    /// <see cref="ProcessPoolOptions.ProgressInterval"/>, and the final report is delivered before the call returns (or
    /// before its enumeration ends). Python: <c>tqdm(pool.imap(f, xs), total=len(xs))</c>. The returned object is a view:
    /// closing, terminating or disposing it acts on the pool itself. Reports go on the thread pool, one at a time.
    /// </summary>
    /// <example><code>int[] squares = pool.WithProgress(new Progress&lt;PoolProgress&gt;(p =&gt; Console.WriteLine($"{p.Done} out of {p.Total}"))).Map(Square, xs);</code></example>
    public ProcessPool WithProgress(IProgress<PoolProgress> progress) => new(this, progress ?? throw new ArgumentNullException(nameof(progress)));

    /// <summary>The number of workers the pool keeps running.</summary>
    public int WorkerCount => _runtime.WorkerCount;

    /// <summary>The process ids of the workers running now (this process's id in in-process mode).</summary>
    public IReadOnlyList<int> ProcessIds => [.. _runtime.Supervisor.Workers.Select(w => w.ProcessId)];

    /// <summary>Completes when the pool runs its full count of workers (after a crash, once the replacement is ready).</summary>
    internal Task WhenAllWorkersAsync(CancellationToken cancellationToken = default) => _runtime.Supervisor.WhenWorkersAsync(WorkerCount, cancellationToken);

    /// <summary>Every worker process id this pool ever started.</summary>
    internal IReadOnlyList<int> StartedProcessIds => _runtime.Supervisor.StartedProcessIds;

    /// <summary>Starts a pool without blocking the calling thread.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is invalid.</exception>
    /// <exception cref="WorkerStartException">The workers could not be started.</exception>
    public static async Task<ProcessPool> StartAsync(ProcessPoolOptions? options = null, CancellationToken cancellationToken = default) =>
        new(await PoolRuntime.StartAsync(options ?? new ProcessPoolOptions(), cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Applies <paramref name="fn"/> to every item, in the workers, and returns the results in input order.
    /// The input is read at once (as Python's <c>list(iterable)</c>) and sent in chunks of
    /// <paramref name="chunkSize"/> tasks, by default about len / (4 × workers). If tasks fail, the first
    /// failure in input order is thrown once every task has finished
    /// (<see cref="MapOutcomes{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/> returns them all). Python: <c>Pool.map</c>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first item cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A task threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">A task's worker died running it.</exception>
    public TResult[] Map<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(MapAsync(fn, items, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    /// <summary>As <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>, without blocking. Python: <c>Pool.map_async</c>.</summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapCore<T, TResult>(Ship(fn, typeof(Func<T, TResult>)), One<T>(), Materialize(items), chunkSize, nameof(Map), taskTimeout, cancellationToken);

    /// <summary>
    /// As <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>, but every
    /// task's value or exception, in input order: one failure does not hide the others.
    /// Python has no equivalent; concurrent.futures users collect each future's result or exception.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or the first item cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public Outcome<TResult>[] MapOutcomes<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(MapOutcomesAsync(fn, items, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="MapOutcomes{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public Task<Outcome<TResult>[]> MapOutcomesAsync<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        MapOutcomesCore<T, TResult>(Ship(fn, typeof(Func<T, TResult>)), One<T>(), Materialize(items), chunkSize, taskTimeout, cancellationToken);

    /// <summary>
    /// Applies <paramref name="fn"/> to every item and yields the results in input order as they are ready.
    /// The input is read lazily, at most <c>max(4 × workers × chunkSize, 256)</c> items ahead of what you have taken,
    /// so an endless sequence works and memory stays flat; stopping the enumeration stops reading it. A task
    /// that failed throws at its position. Without <paramref name="chunkSize"/>, chunks start at one task and
    /// adapt to the tasks' duration (about 2 ms of work each, at most 128 tasks), as joblib's auto batching
    /// does: tiny tasks are sent many per message, long ones one by one. Python: <c>Pool.imap</c> (whose
    /// default chunk size is a fixed 1).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        BlockingResults.Of(() => ImapAsync(fn, items, chunkSize, taskTimeout, cancellationToken), cancellationToken);

    /// <inheritdoc cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ImapAsync(fn, Lazy(items), chunkSize, taskTimeout, cancellationToken);

    /// <inheritdoc cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> fn, IAsyncEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ImapCore<T, TResult>(Ship(fn, typeof(Func<T, TResult>)), One<T>(), items, chunkSize, ordered: true, nameof(Imap), taskTimeout, cancellationToken)
            .Results(static outcome => outcome.GetValueOrThrow());

    /// <summary>
    /// As <see cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>, but in
    /// the order tasks finish, each result with the index of its input. Python: <c>Pool.imap_unordered</c>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public IEnumerable<(long Index, TResult Result)> ImapUnordered<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        BlockingResults.Of(() => ImapUnorderedAsync(fn, items, chunkSize, taskTimeout, cancellationToken), cancellationToken);

    /// <inheritdoc cref="ImapUnordered{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public IAsyncEnumerable<(long Index, TResult Result)> ImapUnorderedAsync<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ImapUnorderedAsync(fn, Lazy(items), chunkSize, taskTimeout, cancellationToken);

    /// <inheritdoc cref="ImapUnordered{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public IAsyncEnumerable<(long Index, TResult Result)> ImapUnorderedAsync<T, TResult>(Func<T, TResult> fn, IAsyncEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ImapCore<T, TResult>(Ship(fn, typeof(Func<T, TResult>)), One<T>(), items, chunkSize, ordered: false, nameof(ImapUnordered), taskTimeout, cancellationToken)
            .Results(static outcome => (outcome.Index, outcome.GetValueOrThrow()));

    /// <summary>
    /// As <see cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>, yielding
    /// every task's <see cref="Outcome{T}"/> in input order instead of throwing at failures.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public IAsyncEnumerable<Outcome<TResult>> ImapOutcomesAsync<T, TResult>(Func<T, TResult> fn, IAsyncEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ImapCore<T, TResult>(Ship(fn, typeof(Func<T, TResult>)), One<T>(), items, chunkSize, ordered: true, "ImapOutcomes", taskTimeout, cancellationToken)
            .Results(static outcome => outcome);

    /// <inheritdoc cref="ImapOutcomesAsync{T, TResult}(Func{T, TResult}, IAsyncEnumerable{T}, int?, TimeSpan?, CancellationToken)"/>
    public IEnumerable<Outcome<TResult>> ImapOutcomes<T, TResult>(Func<T, TResult> fn, IEnumerable<T> items, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        BlockingResults.Of(() => ImapOutcomesAsync(fn, Lazy(items), chunkSize, taskTimeout, cancellationToken), cancellationToken);

    /// <summary>Runs <paramref name="fn"/>(<paramref name="arg"/>) in a worker and returns its result. Python: <c>Pool.apply</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or <paramref name="arg"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">The function threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/> when the host cannot rebuild it (a breaking change: every task exception used to arrive as a <see cref="RemoteException"/>).</exception>
    /// <exception cref="WorkerCrashedException">The worker died running it.</exception>
    public TResult Apply<T, TResult>(Func<T, TResult> fn, T arg, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T, TResult>)), One<T>(), arg, default(Action<TResult>), null, taskTimeout, cancellationToken, waits: true).Get();

    /// <summary>Runs <paramref name="fn"/>() in a worker and returns its result. Python: <c>Pool.apply</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public TResult Apply<TResult>(Func<TResult> fn, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<TResult>)), new Args0(), default(ValueTuple), default(Action<TResult>), null, taskTimeout, cancellationToken, waits: true).Get();

    /// <summary>
    /// Starts <paramref name="fn"/>(<paramref name="arg"/>) in a worker. The <see cref="AsyncResult{T}"/> can
    /// be awaited or waited on; exactly one of <paramref name="callback"/> and <paramref name="errorCallback"/>
    /// runs before it is ready. Python: <c>Pool.apply_async(func, args, callback, error_callback)</c>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="fn"/> or <paramref name="arg"/> cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public AsyncResult<TResult> ApplyAsync<T, TResult>(Func<T, TResult> fn, T arg, Action<TResult>? callback = null, Action<Exception>? errorCallback = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<T, TResult>)), One<T>(), arg, callback, errorCallback, taskTimeout, cancellationToken);

    /// <inheritdoc cref="ApplyAsync{T, TResult}(Func{T, TResult}, T, Action{TResult}?, Action{Exception}?, TimeSpan?, CancellationToken)"/>
    public AsyncResult<TResult> ApplyAsync<TResult>(Func<TResult> fn, Action<TResult>? callback = null, Action<Exception>? errorCallback = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        ApplyCore(Ship(fn, typeof(Func<TResult>)), new Args0(), default(ValueTuple), callback, errorCallback, taskTimeout, cancellationToken);

    /// <summary>Takes no new work; the work already submitted finishes, then the workers exit. Idempotent. Python: <c>Pool.close</c>.</summary>
    public void Close() => _runtime.Close();

    /// <summary>
    /// Stops now: the workers are killed with every process they started, and every unfinished task fails
    /// with <see cref="PoolTerminatedException"/>. Idempotent. Python: <c>Pool.terminate</c>.
    /// </summary>
    public void Terminate() => _runtime.Terminate();

    /// <summary>Waits until every worker has exited, after <see cref="Close"/> or <see cref="Terminate"/>. Python: <c>Pool.join</c>.</summary>
    /// <exception cref="InvalidOperationException">The pool is still running (Python raises ValueError).</exception>
    public void Join() => Block(JoinAsync());

    /// <summary>
    /// As <see cref="Join()"/>, for at most <paramref name="timeout"/>: whether every worker has exited (pebble's
    /// <c>join(timeout)</c>, in the shape of <see cref="Thread.Join(TimeSpan)"/>). A pool still closing after the
    /// timeout goes on closing; a later <c>Join</c> waits for the rest.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pool is still running (Python raises ValueError).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>) or longer than <see cref="int.MaxValue"/> milliseconds.</exception>
    public bool Join(TimeSpan timeout)
    {
        Task joined = JoinAsync();
        if (!((IAsyncResult)joined).AsyncWaitHandle.WaitOne(timeout))
        {
            return false;
        }

        Block(joined);
        return true;
    }

    /// <inheritdoc cref="Join()"/>
    public Task JoinAsync(CancellationToken cancellationToken = default) => _runtime.JoinAsync(cancellationToken);

    /// <summary>Terminates the pool and waits for its workers to exit. Idempotent.</summary>
    public void Dispose() => Block(DisposeAsync().AsTask());

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        _owner.Dispose();
        _runtime.Terminate();
        await _runtime.JoinAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private static T Block<T>(Task<T> task) => task.GetAwaiter().GetResult();

    private static void Block(Task task) => task.GetAwaiter().GetResult();

    /// <summary>
    /// The items as an array. An array is not copied: it is read as its chunks are sent, as Python's pool
    /// reads a list. (An array of a derived type seen through covariance is copied: spans need the exact type.)
    /// </summary>
    private static T[] Materialize<T>(IEnumerable<T> items, string name = "items") =>
        items is T[] array && array.GetType() == typeof(T[]) ? array : (items ?? throw new ArgumentNullException(name)).ToArray();

    /// <summary>The items as an async sequence, read lazily; a null sequence is refused here, at the call.</summary>
    private static LazySequence<T> Lazy<T>(IEnumerable<T> items) => new(items ?? throw new ArgumentNullException(nameof(items)));

    /// <summary>What a function that returns nothing yields from Imap: the input index of the task that ended, or its exception.</summary>
    private static long Ended(Outcome<ValueTuple> outcome)
    {
        outcome.GetValueOrThrow();
        return outcome.Index;
    }

    private Args1<T> One<T>() => new(_runtime.Codecs.Get<T>());

    private ShippedFunction Ship(Delegate fn, Type delegateType) => _runtime.Functions.Get(fn, delegateType, nameof(fn));

    /// <summary>Checks a call; returns a finished task when there is nothing to send.</summary>
    private Task? Prepare<TArgs>(ArgsCodec<TArgs> args, TArgs[] inputs, ref int? chunkSize, string operation, CancellationToken cancellationToken)
    {
        if (chunkSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be positive, or null for the default.");
        }

        _runtime.EnsureRunning(operation);
        if (inputs.Length == 0)
        {
            // A cancelled call is cancelled, empty or not (as Imap's is).
            return cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;
        }

        Shipping.CheckArgument(args, inputs[0], _runtime.Serializer, "items");
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        int perWorker = _runtime.WorkerCount * 4;
        chunkSize ??= Math.Max(1, (inputs.Length + perWorker - 1) / perWorker);
        return null;
    }

    private Task<TResult[]> MapCore<TArgs, TResult>(
        ShippedFunction function, ArgsCodec<TArgs> args, TArgs[] inputs, int? chunkSize, string operation, TimeSpan? taskTimeout, CancellationToken cancellationToken)
    {
        TimeSpan? timeout = TimeoutFor(taskTimeout);
        if (Prepare(args, inputs, ref chunkSize, operation, cancellationToken) is { } early)
        {
            return early.IsCanceled ? Task.FromCanceled<TResult[]>(cancellationToken) : Task.FromResult(Array.Empty<TResult>());
        }

        var job = new MapJob<TArgs, TResult>(_runtime, function, args, _runtime.Codecs.Get<TResult>(), inputs, chunkSize!.Value) { TaskTimeout = timeout, Owner = _owner };
        return Submit(job, job.Task, operation, cancellationToken);
    }

    private Task<Outcome<TResult>[]> MapOutcomesCore<TArgs, TResult>(
        ShippedFunction function, ArgsCodec<TArgs> args, TArgs[] inputs, int? chunkSize, TimeSpan? taskTimeout, CancellationToken cancellationToken,
        string operation = nameof(MapOutcomes), ProgressReporter? progress = null)
    {
        TimeSpan? timeout = TimeoutFor(taskTimeout);
        if (Prepare(args, inputs, ref chunkSize, operation, cancellationToken) is { } early)
        {
            // early has completed: cancelled with the caller's token (a continuation would be cancelled without it), or empty.
            return early.IsCanceled ? Task.FromCanceled<Outcome<TResult>[]>(cancellationToken) : Task.FromResult(Array.Empty<Outcome<TResult>>());
        }

        var job = new MapOutcomesJob<TArgs, TResult>(_runtime, function, args, _runtime.Codecs.Get<TResult>(), inputs, chunkSize!.Value) { TaskTimeout = timeout, Owner = _owner, Progress = progress };
        return Submit(job, job.Task, operation, cancellationToken);
    }

    private ImapJob<TArgs, TResult> ImapCore<TArgs, TResult>(
        ShippedFunction function, ArgsCodec<TArgs> args, IAsyncEnumerable<TArgs> items, int? chunkSize, bool ordered, string operation, TimeSpan? taskTimeout, CancellationToken cancellationToken,
        ProgressReporter? progress = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        TimeSpan? timeout = TimeoutFor(taskTimeout);
        if (chunkSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be positive, or null for the default.");
        }

        var job = new ImapJob<TArgs, TResult>(_runtime, function, args, _runtime.Codecs.Get<TResult>(), chunkSize, ordered)
        {
            TaskTimeout = timeout,
            Owner = _owner,
            KnownCount = items is LazySequence<TArgs> { Count: { } count } ? count : null,
            Progress = progress,
        };
        _runtime.Submit(job, operation, _progress);
        job.Start(items, cancellationToken);
        return job;
    }

    private AsyncResult<TResult> ApplyCore<TArgs, TResult>(
        ShippedFunction function, ArgsCodec<TArgs> args, TArgs arg, Action<TResult>? callback, Action<Exception>? errorCallback, TimeSpan? taskTimeout, CancellationToken cancellationToken,
        bool waits = false)
    {
        TimeSpan? timeout = TimeoutFor(taskTimeout);
        _runtime.EnsureRunning(nameof(Apply));
        Shipping.CheckArgument(args, arg, _runtime.Serializer, "arg");
        var result = new AsyncResult<TResult>(callback, errorCallback);
        if (cancellationToken.IsCancellationRequested)
        {
            // Not sent at all: a task that is sent first may finish before the registration below could stop it.
            result.SetError(new OperationCanceledException("The call was cancelled.", cancellationToken), stopped: true);
            return result;
        }

        var job = new ApplyJob<TArgs, TResult>(_runtime, function, args, _runtime.Codecs.Get<TResult>(), arg, result) { TaskTimeout = timeout, Owner = _owner };
        Job.WaitingCaller = waits ? job : null;
        try
        {
            _runtime.Submit(job, nameof(Apply), _progress);
        }
        finally
        {
            Job.WaitingCaller = null;
        }

        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                CancellationTokenRegistration registration = cancellationToken.Register(
                    static (state, token) => ((Job)state!).Stop(new OperationCanceledException("The call was cancelled.", token)), job);
                result.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        catch
        {
            job.ReadingLink?.ReturnReading();
            throw;
        }

        // A synchronous Apply whose task went to an idle local worker reads its result itself: one wake-up less a call.
        job.ReadingLink?.ReadUntil(result.Task);
        return result;
    }

    /// <summary>The per-task timeout of a call: its own, else the pool's; checked here, at the call.</summary>
    private TimeSpan? TimeoutFor(TimeSpan? taskTimeout)
    {
        if (taskTimeout is { } own)
        {
            ProcessPoolOptions.CheckTimeout(own, nameof(taskTimeout));
            return own == Timeout.InfiniteTimeSpan ? null : own;
        }

        return _runtime.Options.TaskTimeout;
    }

    private Task<TOut> Submit<TOut>(Job job, Task<TOut> completion, string operation, CancellationToken cancellationToken)
    {
        _runtime.Submit(job, operation, _progress);
        if (cancellationToken.CanBeCanceled)
        {
            CancellationTokenRegistration registration = cancellationToken.Register(
                static (state, token) => ((Job)state!).Stop(new OperationCanceledException("The call was cancelled.", token)), job);
            completion.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return completion;
    }
}
