using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// The calls of one <c>Run</c> that share a function: sent as one job, in chunks, as a <c>Map</c> over their
/// arguments. <see cref="Indices"/> maps a task's position in the group to the call's position in the <c>Run</c>.
/// </summary>
internal abstract class CallGroup<TResult>
{
    private int[] _indices = new int[4];

    public int Count { get; private set; }

    public ReadOnlySpan<int> Indices => _indices.AsSpan(0, Count);

    public void Add(Call<TResult> call, int index)
    {
        if (Count == _indices.Length)
        {
            Array.Resize(ref _indices, Count * 2);
        }

        _indices[Count++] = index;
        AddArguments(call);
    }

    protected abstract void AddArguments(Call<TResult> call);

    /// <summary>Runs the group's calls; outcomes in group order, indexed in the group.</summary>
    public abstract Task<Outcome<TResult>[]> RunAsync(ProcessPool pool, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken);

    /// <summary>Runs the group's calls; outcomes as they end, indexed in the group.</summary>
    public abstract IAsyncEnumerable<Outcome<TResult>> RunAsCompleted(ProcessPool pool, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken);
}

internal sealed class CallGroup<TArgs, TResult>(ArgsCall<TArgs, TResult> first) : CallGroup<TResult>
{
    private TArgs[] _args = new TArgs[4];

    public override Task<Outcome<TResult>[]> RunAsync(ProcessPool pool, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken) =>
        pool.RunGroupAsync<TArgs, TResult>(first.Function, first.DelegateType, first.Codec, Arguments(), chunkSize, taskTimeout, progress, cancellationToken);

    public override IAsyncEnumerable<Outcome<TResult>> RunAsCompleted(ProcessPool pool, int? chunkSize, TimeSpan? taskTimeout, ProgressReporter? progress, CancellationToken cancellationToken) =>
        pool.RunGroupAsCompleted<TArgs, TResult>(first.Function, first.DelegateType, first.Codec, Arguments(), chunkSize, taskTimeout, progress, cancellationToken);

    protected override void AddArguments(Call<TResult> call)
    {
        if (Count > _args.Length)
        {
            Array.Resize(ref _args, _args.Length * 2);
        }

        _args[Count - 1] = Unsafe.As<ArgsCall<TArgs, TResult>>(call).Args;
    }

    private TArgs[] Arguments()
    {
        if (_args.Length != Count)
        {
            Array.Resize(ref _args, Count);
        }

        return _args;
    }
}

/// <summary>A <c>Run</c>'s calls, grouped by function, in the order each function first appears.</summary>
internal static class CallGroups
{
    public static (CallGroup<TResult>[] Groups, int Count) Of<TResult>(IEnumerable<Call<TResult>> calls)
    {
        ArgumentNullException.ThrowIfNull(calls);
        var byFunction = new Dictionary<Delegate, CallGroup<TResult>>();
        var groups = new List<CallGroup<TResult>>();
        CallGroup<TResult>? last = null;
        Delegate? lastFunction = null;
        int index = 0;
        foreach (Call<TResult> call in calls)
        {
            if (call is null)
            {
                throw new ArgumentException($"Call {index} is null: build every call with Call.Of(function, arguments...).", nameof(calls));
            }

            // Consecutive calls of one function (the usual case) skip the lookup.
            if (!ReferenceEquals(call.Function, lastFunction))
            {
                if (!byFunction.TryGetValue(call.Function, out last))
                {
                    last = call.NewGroup();
                    byFunction.Add(call.Function, last);
                    groups.Add(last);
                }

                lastFunction = call.Function;
            }

            last!.Add(call, index++);
        }

        return ([.. groups], index);
    }
}
