namespace Pool.Internal;

/// <summary>
/// Consecutive tasks of one job, sent to one worker in one <c>Run</c> frame. The worker reports their
/// outcomes in order, so <see cref="Accounted"/> (updated by the connection's read loop) is also the index
/// of the first task without an outcome: what to run again if the worker dies.
/// </summary>
internal sealed class Chunk(Job job, long firstIndex, int count, Array items, int itemsOffset)
{
    public Job Job => job;

    /// <summary>The position of the first task in the job's input.</summary>
    public long FirstIndex { get; private set; } = firstIndex;

    public int Count { get; set; } = count;

    /// <summary>The job's argument array that holds the tasks (a <c>TArgs[]</c>).</summary>
    public Array Items => items;

    public int ItemsOffset => itemsOffset;

    /// <summary>Set when sent; a resent chunk gets a new one.</summary>
    public int Id { get; set; }

    public int Accounted { get; set; }

    public long SentAt { get; set; }

    /// <summary>The bytes its frame took, the arrays sent as blocks included; set when written.</summary>
    public long Bytes { get; set; }

    /// <summary>How many workers died while this chunk was queued on them without it being to blame.</summary>
    public int Attempts { get; set; }

    /// <summary>Its activity while it is out on a worker (tracing on, someone listening); ended when it completes.</summary>
    public System.Diagnostics.Activity? Activity { get; set; }

    /// <summary>Whether another chunk was cut from this one, or this one from another: they share <see cref="Items"/>,
    /// so neither may be used again (<see cref="Reuse"/>) when it completes.</summary>
    public bool SharesItems { get; private set; }

    /// <summary>The tasks from <paramref name="offset"/> on, as a new chunk.</summary>
    public Chunk From(int offset) => Slice(offset, Count - offset);

    /// <summary><paramref name="count"/> tasks from <paramref name="offset"/>, as a new chunk.</summary>
    public Chunk Slice(int offset, int count)
    {
        SharesItems = true;
        return new(job, FirstIndex + offset, count, items, itemsOffset + offset) { Attempts = Attempts, SharesItems = true };
    }

    /// <summary>
    /// Makes a completed chunk, which no connection, queue or other chunk holds any more, new again for the tasks
    /// now in <see cref="Items"/>: what lets a job send chunk after chunk without allocating.
    /// </summary>
    public void Reuse(long first, int tasks)
    {
        FirstIndex = first;
        Count = tasks;
        Id = 0;
        Accounted = 0;
        SentAt = 0;
        Bytes = 0;
        Attempts = 0;
        Activity = null;
    }
}
