namespace Pool;

/// <summary>
/// How far one call of the pool has come, as reported to <see cref="ProcessPool.WithProgress"/>'s progress or <see cref="ProcessPoolOptions.Progress"/>.
/// Python: what a <c>tqdm</c> bar shows (n, total, elapsed); joblib's <c>verbose</c> lines.
/// </summary>
/// <param name="Operation">The call: <c>Map</c>, <c>StarMap</c>, <c>Imap</c>, <c>Apply</c>...</param>
/// <param name="CallId">A number that tells calls of this pool apart, increasing with each call.</param>
/// <param name="Completed">Tasks that ended with a value so far.</param>
/// <param name="Failed">Tasks that ended with an exception so far.</param>
/// <param name="Total">How many tasks the call has; for an Imap, the input's count when it is known without enumerating it (an array, a collection), else null.</param>
/// <param name="Elapsed">Time since the call was made.</param>
/// <param name="IsFinal">Whether this is the last report of the call: every task has an outcome, or the call was stopped.</param>
public readonly record struct PoolProgress(string Operation, long CallId, long Completed, long Failed, long? Total, TimeSpan Elapsed, bool IsFinal)
{
    /// <summary>Tasks that ended either way: <see cref="Completed"/> + <see cref="Failed"/>.</summary>
    public long Done => Completed + Failed;
}
