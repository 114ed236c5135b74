using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Runtime.InteropServices;

namespace Pool.Contracts;

/// <summary>
/// Reads frames from a stream with blocking reads, on the caller's (dedicated) thread, and hands each to
/// <c>handle</c> on that same thread. A read is always pending, so the end of the stream is seen the
/// moment the other side closes or dies, and a frame is handled with no thread hop after it arrives:
/// both ends of the protocol read this way. A <see cref="MessageType.Block"/> frame is not handed over: its
/// bytes go straight from the stream into a new array (only what was read ahead with the frame before it is
/// copied), kept in <see cref="ReceivedBlocks"/> for the next frame's decoder. Returns at end of stream;
/// read errors propagate.
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
                Array? block = null;
                int filled = 0;
                int blockLength = 0;
                try
                {
                    while (true)
                    {
                        if (TryStartBlock(ref buffer, out block, out filled, out blockLength))
                        {
                            if (filled < blockLength)
                            {
                                // The buffer is used up; the rest of the block comes straight from the stream.
                                break;
                            }

                            ReceivedBlocks.Add(block);
                            block = null;
                        }
                        else if (Framing.TryReadFrame(ref buffer, out MessageType type, out ReadOnlySequence<byte> payload))
                        {
                            handle(type, payload);
                            ReceivedBlocks.Clear();
                        }
                        else
                        {
                            break;
                        }
                    }
                }
                finally
                {
                    readSize = NextReadSize(buffer);
                    pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (block is not null)
                {
                    if (!ReadExactly(input, BytesOf(block, blockLength)[filled..]))
                    {
                        return;
                    }

                    ReceivedBlocks.Add(block);
                }
            }
        }
        finally
        {
            ReceivedBlocks.Clear();
            pipe.Writer.Complete();
            pipe.Reader.Complete();
        }
    }

    /// <summary>
    /// When <paramref name="buffer"/> starts with a <see cref="MessageType.Block"/> frame: allocates its array,
    /// fills it with what the buffer holds and takes that off the buffer. When <paramref name="filled"/> is less
    /// than <paramref name="length"/>, the rest is still to be read (and the buffer is empty).
    /// </summary>
    private static bool TryStartBlock(ref ReadOnlySequence<byte> buffer, [NotNullWhen(true)] out Array? block, out int filled, out int length)
    {
        block = null;
        filled = 0;
        length = 0;
        if (buffer.Length < FrameWriter.BlockHeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[FrameWriter.BlockHeaderSize];
        buffer.Slice(0, FrameWriter.BlockHeaderSize).CopyTo(header);
        if (header[4] != (byte)MessageType.Block)
        {
            return false;
        }

        uint frameLength = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (frameLength < 2 || frameLength > Framing.MaxFrameLength)
        {
            throw new ProtocolException($"A block frame declared a length of {frameLength} bytes; the stream is corrupt.");
        }

        length = (int)frameLength - 2;
        block = RawTypes.AllocateBlock(header[5], length);
        filled = (int)Math.Min(buffer.Length - FrameWriter.BlockHeaderSize, length);
        buffer.Slice(FrameWriter.BlockHeaderSize, filled).CopyTo(BytesOf(block, length));
        buffer = buffer.Slice(FrameWriter.BlockHeaderSize + filled);
        return true;
    }

    private static Span<byte> BytesOf(Array block, int length) =>
        MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(block), length);

    /// <summary>Fills <paramref name="destination"/> from the stream; false at end of stream.</summary>
    private static bool ReadExactly(Stream input, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int read = input.Read(destination);
            if (read == 0)
            {
                return false;
            }

            destination = destination[read..];
        }

        return true;
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
        long missing = 4 + (long)BinaryPrimitives.ReadUInt32LittleEndian(prefix) - rest.Length;
        return (int)Math.Clamp(missing, ReadSize, LargeReadSize);
    }
}
