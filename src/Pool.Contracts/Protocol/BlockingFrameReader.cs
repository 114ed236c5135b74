using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;

namespace Pool.Contracts;

/// <summary>
/// Reads frames from a stream with blocking reads, on the caller's (dedicated) thread, and hands each to
/// <c>handle</c> on that same thread. A read is always pending, so the end of the stream is seen the
/// moment the other side closes or dies, and a frame is handled with no thread hop after it arrives:
/// both ends of the protocol read this way. Returns at end of stream; read errors propagate.
/// </summary>
internal static class BlockingFrameReader
{
    private const int ReadSize = 64 * 1024;

    // A large frame is read in pieces of up to this much, so that a megabyte argument takes a few system
    // calls and wake-ups rather than one per 64 KiB.
    private const int LargeReadSize = 4 * 1024 * 1024;

    /// <summary>Handles one frame; the payload is valid only during the call.</summary>
    public delegate void FrameHandler(MessageType type, ReadOnlySequence<byte> payload);

    public static void Run(Stream input, FrameHandler handle)
    {
        var pipe = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0,
            minimumSegmentSize: ReadSize,
            useSynchronizationContext: false));
        int readSize = ReadSize;
        try
        {
            while (true)
            {
                Memory<byte> memory = pipe.Writer.GetMemory(readSize);
                int read = input.Read(memory.Span);
                if (read == 0)
                {
                    return;
                }

                pipe.Writer.Advance(read);
                // Never waits: the pipe is a buffer this thread both fills and drains (no pause threshold).
                ValueTask<FlushResult> flushed = pipe.Writer.FlushAsync();
                Debug.Assert(flushed.IsCompletedSuccessfully, "An unpaused pipe completes its flush at once.");
                if (!pipe.Reader.TryRead(out ReadResult result))
                {
                    continue;
                }

                ReadOnlySequence<byte> buffer = result.Buffer;
                try
                {
                    while (Framing.TryReadFrame(ref buffer, out MessageType type, out ReadOnlySequence<byte> payload))
                    {
                        handle(type, payload);
                    }
                }
                finally
                {
                    readSize = NextReadSize(buffer);
                    pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
        finally
        {
            pipe.Writer.Complete();
            pipe.Reader.Complete();
        }
    }

    /// <summary>How much to ask for next: what the partial frame at the start of <paramref name="rest"/> still lacks, within bounds.</summary>
    private static int NextReadSize(ReadOnlySequence<byte> rest)
    {
        if (rest.Length < 4)
        {
            return ReadSize;
        }

        Span<byte> prefix = stackalloc byte[4];
        rest.Slice(0, 4).CopyTo(prefix);
        long missing = 4 + (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(prefix) - rest.Length;
        return (int)Math.Clamp(missing, ReadSize, LargeReadSize);
    }
}
