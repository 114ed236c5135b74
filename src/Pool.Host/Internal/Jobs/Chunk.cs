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
    public long FirstIndex => firstIndex;

    public int Count { get; set; } = count;

    /// <summary>The job's argument array that holds the tasks (a <c>TArgs[]</c>).</summary>
    public Array Items => items;

    public int ItemsOffset => itemsOffset;

    /// <summary>Set when sent; a resent chunk gets a new one.</summary>
    public int Id { get; set; }

    public int Accounted { get; set; }

    public long SentAt { get; set; }

    /// <summary>How many workers died while this chunk was queued on them without it being to blame.</summary>
    public int Attempts { get; set; }

    /// <summary>The tasks from <paramref name="offset"/> on, as a new chunk.</summary>
    public Chunk From(int offset) => Slice(offset, Count - offset);

    /// <summary><paramref name="count"/> tasks from <paramref name="offset"/>, as a new chunk.</summary>
    public Chunk Slice(int offset, int count) => new(job, firstIndex + offset, count, items, itemsOffset + offset) { Attempts = Attempts };
}
