using Pool.Internal;

namespace Pool;

/// <content>The process-wide shared pool, for one-line use without owning a pool.</content>
public sealed partial class ProcessPool
{
    private static readonly Lock SharedLock = new();
    private static ProcessPool? s_shared;
    private static bool s_endsAtExit;

    /// <summary>
    /// A pool shared by the whole process, for one-line use: <c>ProcessPool.Shared.Map(f, xs)</c>. Started on first use
    /// with one worker per core and the default options; later uses get the same pool, and its workers are warm. It is
    /// terminated when the process exits (and, like every pool, its workers exit by themselves if the process is killed).
    /// If it was terminated or disposed, the next use starts a new one; if it was closed, the next use gets it until its
    /// queued work is done and its workers have exited (so that <c>Shared.Close(); Shared.Join();</c> joins it, as Python's
    /// <c>pool.close(); pool.join()</c>), and then a new one. Python: joblib's reused executor
    /// (<c>get_reusable_executor</c>, what <c>Parallel</c> uses by default) and the seeds' <c>easy_parallelize</c>.
    /// Own a pool instead (<c>new ProcessPool(options)</c>) to choose its options (workers, serializer, timeouts,
    /// logger, initializer), to isolate one part of an application from another's long or crashing tasks, or to end
    /// its workers at a known time.
    /// </summary>
    /// <exception cref="WorkerStartException">The workers could not be started (the next use tries again).</exception>
    public static ProcessPool Shared
    {
        get
        {
            ProcessPool? pool = Volatile.Read(ref s_shared);
            if (pool is not null && IsCurrent(pool))
            {
                return pool;
            }

            lock (SharedLock)
            {
                if (s_shared is null || !IsCurrent(s_shared))
                {
                    if (!s_endsAtExit)
                    {
                        AppDomain.CurrentDomain.ProcessExit += static (_, _) => EndShared();
                        s_endsAtExit = true;
                    }

                    Volatile.Write(ref s_shared, new ProcessPool());
                }

                return s_shared!;
            }
        }
    }

    /// <summary>Running, or closed with workers still finishing its work (a Join of it must find it).</summary>
    private static bool IsCurrent(ProcessPool pool) =>
        pool._runtime.Lifecycle.State == PoolState.Running || pool._runtime.Lifecycle.State == PoolState.Closed && !pool._runtime.IsShutDown;

    /// <summary>At process exit: the shared pool's workers are killed and reaped before the process ends.</summary>
    private static void EndShared()
    {
        ProcessPool? pool = Volatile.Read(ref s_shared);
        if (pool is null)
        {
            return;
        }

        pool.Terminate();
        // Bounded: an exit must not hang on a worker that does not die (the workers also exit on their own when the pipe closes).
        _ = pool._runtime.JoinAsync(CancellationToken.None).Wait(TimeSpan.FromSeconds(5));
    }
}
