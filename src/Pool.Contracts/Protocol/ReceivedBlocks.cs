namespace Pool.Contracts;

/// <summary>
/// The arrays that arrived in <see cref="MessageType.Block"/> frames ahead of the frame being decoded, in
/// order. <see cref="BlockingFrameReader"/> fills it on its own thread and empties it after each frame;
/// a decoder running inside that frame's handler takes its arrays with <see cref="Take{T}"/>. Per thread,
/// because every frame is decoded on the thread that read it.
/// </summary>
internal static class ReceivedBlocks
{
    [ThreadStatic]
    private static Queue<Array>? t_blocks;

    /// <summary>The next block, which must hold elements of type <typeparamref name="T"/>.</summary>
    /// <exception cref="ProtocolException">No block arrived for this value, or one of another type did.</exception>
    public static T[] Take<T>()
        where T : unmanaged
    {
        if (t_blocks is not { Count: > 0 } blocks)
        {
            throw new ProtocolException($"A {typeof(T).Name}[] value refers to a block that did not arrive before its frame.");
        }

        return blocks.Dequeue() as T[]
            ?? throw new ProtocolException($"A {typeof(T).Name}[] value refers to a block of another element type.");
    }

    /// <summary>Reader: whether no block waits for its frame on this thread.</summary>
    public static bool IsEmpty => t_blocks is not { Count: > 0 };

    /// <summary>Reader: a block arrived.</summary>
    public static void Add(Array block) => (t_blocks ??= new Queue<Array>()).Enqueue(block);

    /// <summary>Reader: the frame was handled; blocks it did not take (a chunk that was never decoded) are dropped.</summary>
    public static void Clear()
    {
        if (t_blocks is { Count: > 0 } blocks)
        {
            blocks.Clear();
        }
    }
}
