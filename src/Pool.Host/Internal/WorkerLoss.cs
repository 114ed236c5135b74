using Pool.Contracts;

namespace Pool.Internal;

/// <summary>Where a worker was when it died: task <see cref="Index"/> of chunk <see cref="ChunkId"/>.</summary>
internal readonly record struct TaskPosition(int ChunkId, int Index);

/// <summary>A running task the pool stopped on purpose (timeout, cancelled call): how it fails if its worker is killed.</summary>
internal sealed record TaskStop(TaskPosition Position, Func<long, Exception> Error);

/// <summary>Everything known about a worker that is gone, for the supervisor to settle its tasks.</summary>
/// <param name="Worker">The connection.</param>
/// <param name="Exit">How its process ended.</param>
/// <param name="Orphans">The chunks it held without all their outcomes.</param>
/// <param name="Running">The task it was running, from its progress cell.</param>
/// <param name="Failure">Why the connection ended, when not by a plain end of stream.</param>
/// <param name="Expected">It was closed with no work left (Close, or retired).</param>
/// <param name="Retired">It served <see cref="ProcessPoolOptions.MaxTasksPerWorker"/> tasks and must be replaced.</param>
/// <param name="Stopped">The pool killed it to stop a task; the other tasks it held are not to blame.</param>
/// <param name="InitializerError">Its initializer threw; no task ran on it.</param>
internal sealed record WorkerLoss(
    WorkerConnection Worker,
    WorkerExit Exit,
    IReadOnlyList<Chunk> Orphans,
    TaskPosition? Running,
    Exception? Failure,
    bool Expected,
    bool Retired,
    TaskStop? Stopped,
    RemoteError? InitializerError);

/// <summary>Why a link to a worker on another machine was given up: nothing came from it for <see cref="Silent"/>.</summary>
internal sealed class WorkerSilence(TimeSpan silent)
    : Exception($"nothing came from it for {silent.TotalSeconds:0.#} s (its node down, or the network to it cut)")
{
    public TimeSpan Silent => silent;
}
