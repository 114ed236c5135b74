namespace Pool.Internal;

/// <summary>
/// The object whose finalizer terminates a pool that was dropped without <c>Dispose</c>, as CPython's pool terminates
/// its workers when it is collected. Its <see cref="ProcessPool"/> and every pending call (through
/// <see cref="Job.Owner"/>) refer to it, and the pool's own loops do not, so it is finalized only when nothing can
/// use the pool any more. <c>Dispose</c> suppresses the finalizer. <see cref="PoolRuntime.Terminate"/> only starts
/// the shutdown (the workers are killed on the thread pool), so the finalizer thread never waits.
/// </summary>
internal sealed class PoolOwner(PoolRuntime runtime) : IDisposable
{
    ~PoolOwner() => runtime.Terminate();

    /// <summary>The pool was disposed (and terminated by it): nothing is left for the finalizer to do.</summary>
    public void Dispose() => GC.SuppressFinalize(this);
}
