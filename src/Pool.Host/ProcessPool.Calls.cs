using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Pool.Contracts;
using Pool.Internal;

namespace Pool;

/// <content>
/// joblib's list of calls: <see cref="Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/> and its
/// variants run calls built by <see cref="Call.Of{T, TResult}(Func{T, TResult}, T)"/>, whose functions and arguments differ
/// from call to call. The calls of one function are sent together, in chunks, as a <c>Map</c> over their arguments.
/// </content>
public sealed partial class ProcessPool
{
    /// <summary>
    /// Runs every call in the workers and returns the results in the calls' order. The calls of one function travel
    /// together in chunks of <paramref name="chunkSize"/> (by default about its calls / (4 × workers)), so a function
    /// used by many calls costs what a <c>Map</c> over their arguments costs. If calls fail, the first failure in call
    /// order is thrown once every call has finished (<see cref="RunOutcomes{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>
    /// returns them all). Progress (<see cref="WithProgress"/>) counts the calls. Python (joblib):
    /// <c>Parallel(n_jobs)(delayed(f)(a, b) for ...)</c>, without its <c>n_jobs</c> (the pool's workers) or its
    /// keyword arguments (C# has none to ship: pass a record).
    /// </summary>
    /// <exception cref="ArgumentException">A call is null, or its function cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    /// <exception cref="Exception">A call threw: its own exception, rebuilt as its own type with the worker's stack attached, or a <see cref="RemoteException"/>.</exception>
    /// <exception cref="WorkerCrashedException">A call's worker died running it.</exception>
    /// <example><code>double[] scores = pool.Run(from a in store1 from b in store2 select Call.Of(Score, a, b));</code></example>
    public TResult[] Run<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(RunAsync(calls, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>
    /// <summary>As <see cref="Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>, without blocking.</summary>
    public Task<TResult[]> RunAsync<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        // Started here, not in the async method: bad arguments and a closed pool throw at the call, as every other entry point does.
        ValuesOf(RunOutcomesAsync(calls, chunkSize, taskTimeout, cancellationToken));

    private static async Task<TResult[]> ValuesOf<TResult>(Task<Outcome<TResult>[]> running)
    {
        Outcome<TResult>[] outcomes = await running.ConfigureAwait(false);
        var results = new TResult[outcomes.Length];
        for (int i = 0; i < outcomes.Length; i++)
        {
            if (outcomes[i].Exception is { } error)
            {
                ExceptionDispatchInfo.Throw(error);
            }

            results[i] = outcomes[i].Value!;
        }

        return results;
    }

    /// <summary>
    /// As <see cref="Run{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>, but every call's value
    /// or exception, in the calls' order: one failure does not hide the others. Python (joblib):
    /// <c>Parallel(return_as="list")</c> stops at the first error; concurrent.futures users collect each future's outcome.
    /// </summary>
    /// <exception cref="ArgumentException">A call is null, or its function cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public Outcome<TResult>[] RunOutcomes<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        Block(RunOutcomesAsync(calls, chunkSize, taskTimeout, cancellationToken));

    /// <inheritdoc cref="RunOutcomes{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>
    public Task<Outcome<TResult>[]> RunOutcomesAsync<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default)
    {
        (CallGroup<TResult>[] groups, int count) = CallGroups.Of(calls);
        _runtime.EnsureRunning(nameof(Run));
        ProgressReporter? progress = _runtime.NewProgress(nameof(Run), _progress, count, groups.Length);
        var parts = new Task<Outcome<TResult>[]>[groups.Length];
        for (int i = 0; i < groups.Length; i++)
        {
            parts[i] = groups[i].RunAsync(this, chunkSize, taskTimeout, progress, cancellationToken);
        }

        return Combine(groups, parts, count);
    }

    /// <summary>
    /// Runs every call in the workers and yields each one's <see cref="Outcome{T}"/> as it ends, in the order calls
    /// finish; <see cref="Outcome{T}.Index"/> is the call's position. A failed call is an outcome, not an exception: its
    /// <see cref="Outcome{T}.GetValueOrThrow"/> throws. Chunks adapt to the calls' duration as <c>Imap</c>'s do, unless
    /// <paramref name="chunkSize"/> is given. Stopping the enumeration cancels the calls not yet run. Python:
    /// <c>concurrent.futures.as_completed</c>; joblib: <c>Parallel(return_as="generator_unordered")</c>.
    /// </summary>
    /// <exception cref="ArgumentException">A call is null, or its function cannot be shipped.</exception>
    /// <exception cref="InvalidOperationException">The pool is closed or terminated.</exception>
    public IEnumerable<Outcome<TResult>> RunAsCompleted<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default) =>
        RunAsCompletedAsync(calls, chunkSize, taskTimeout, cancellationToken).Blocking(cancellationToken);

    /// <inheritdoc cref="RunAsCompleted{TResult}(IEnumerable{Call{TResult}}, int?, TimeSpan?, CancellationToken)"/>
    public IAsyncEnumerable<Outcome<TResult>> RunAsCompletedAsync<TResult>(IEnumerable<Call<TResult>> calls, int? chunkSize = null, TimeSpan? taskTimeout = null, CancellationToken cancellationToken = default)
    {
        (CallGroup<TResult>[] groups, int count) = CallGroups.Of(calls);
        _runtime.EnsureRunning(nameof(RunAsCompleted));
        if (chunkSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be positive, or null for the default.");
        }

        TimeoutFor(taskTimeout);
        return MergeAsCompleted(groups, count, chunkSize, taskTimeout, cancellationToken);
    }

    /// <summary>One group of a <c>Run</c>: a <c>MapOutcomes</c> over its calls' arguments.</summary>
    internal Task<Outcome<TResult>[]> RunGroupAsync<TArgs, TResult>(
        Delegate fn, Type delegateType, Func<CodecProvider, ArgsCodec<TArgs>> codec, TArgs[] inputs, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken) =>
        MapOutcomesCore<TArgs, TResult>(Ship(fn, delegateType), codec(_runtime.Codecs), inputs, chunkSize, taskTimeout, cancellationToken, nameof(Run), progress);

    /// <summary>One group of a <c>RunAsCompleted</c>: an <c>ImapUnordered</c> over its calls' arguments, yielding outcomes.</summary>
    internal IAsyncEnumerable<Outcome<TResult>> RunGroupAsCompleted<TArgs, TResult>(
        Delegate fn, Type delegateType, Func<CodecProvider, ArgsCodec<TArgs>> codec, TArgs[] inputs, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken) =>
        ImapCore<TArgs, TResult>(Ship(fn, delegateType), codec(_runtime.Codecs), Lazy(inputs), chunkSize, ordered: false, nameof(RunAsCompleted), taskTimeout, cancellationToken, progress)
            .Results(static outcome => outcome);

    private static async Task<Outcome<TResult>[]> Combine<TResult>(CallGroup<TResult>[] groups, Task<Outcome<TResult>[]>[] parts, int count)
    {
        await Task.WhenAll(parts).ConfigureAwait(false);
        if (groups.Length == 1)
        {
            // One function: the group's order is the calls' order.
            return parts[0].Result;
        }

        var outcomes = new Outcome<TResult>[count];
        for (int g = 0; g < groups.Length; g++)
        {
            Outcome<TResult>[] part = parts[g].Result;
            ReadOnlySpan<int> indices = groups[g].Indices;
            for (int i = 0; i < part.Length; i++)
            {
                outcomes[indices[i]] = part[i].WithIndex(indices[i]);
            }
        }

        return outcomes;
    }

    private async IAsyncEnumerable<Outcome<TResult>> MergeAsCompleted<TResult>(
        CallGroup<TResult>[] groups, int count, int? chunkSize, TimeSpan? taskTimeout, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ProgressReporter? progress = _runtime.NewProgress(nameof(RunAsCompleted), _progress, count, groups.Length);
        if (groups.Length == 1)
        {
            await foreach (Outcome<TResult> outcome in groups[0].RunAsCompleted(this, chunkSize, taskTimeout, progress, cancellationToken).ConfigureAwait(false))
            {
                yield return outcome;
            }

            yield break;
        }

        // Several functions: one pump per group into one channel, read in the order outcomes arrive.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateUnbounded<Outcome<TResult>>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = new Task[groups.Length];
        for (int g = 0; g < groups.Length; g++)
        {
            pumps[g] = PumpAsync(groups[g], channel.Writer, chunkSize, taskTimeout, progress, stop.Token);
        }

        Task all = CompleteWhenAllAsync(pumps, channel.Writer);
        try
        {
            await foreach (Outcome<TResult> outcome in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                yield return outcome;
            }
        }
        finally
        {
            // Abandoned or done: the pumps stop (their jobs are cancelled) and are observed here.
            stop.Cancel();
            await all.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await all.ConfigureAwait(false);
    }

    private async Task PumpAsync<TResult>(CallGroup<TResult> group, ChannelWriter<Outcome<TResult>> writer, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken)
    {
        await foreach (Outcome<TResult> outcome in group.RunAsCompleted(this, chunkSize, taskTimeout, progress, cancellationToken).ConfigureAwait(false))
        {
            writer.TryWrite(outcome.WithIndex(group.Indices[(int)outcome.Index]));
        }
    }

    private static async Task CompleteWhenAllAsync<TResult>(Task[] pumps, ChannelWriter<Outcome<TResult>> writer)
    {
        try
        {
            await Task.WhenAll(pumps).ConfigureAwait(false);
            writer.TryComplete();
        }
        catch (Exception e)
        {
            // A group stopped (cancelled, terminated): the reader gets its reason after the outcomes already written.
            writer.TryComplete(e);
            throw;
        }
    }
}
