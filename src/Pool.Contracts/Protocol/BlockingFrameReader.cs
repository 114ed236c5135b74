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

    /// <summary>Reads frames until the stream ends; with a <paramref name="guard"/> (the host's side), reports frames in progress and checks blocks before allocating them.</summary>
    /// <exception cref="ProtocolException">A length out of range, or a block the guard refuses.</exception>
    public static void Run(Stream input, FrameHandler handle, IFrameGuard? guard = null)
    {
        using var source = new Source(input, guard);
        while (source.ReadFrames(handle))
        {
        }
    }

    /// <summary>
    /// The reading state of one stream, for a side whose reading moves between threads (the worker's: see
    /// WorkerRuntime): <see cref="ReadFrames"/> returns only between frames, with no block waiting for the frame
    /// that refers to it (blocks wait in <see cref="ReceivedBlocks"/>, which is per thread), so that the next call
    /// may come from another thread. One call at a time.
    /// </summary>
    internal sealed class Source(Stream input, IFrameGuard? guard = null) : IDisposable
    {
        private readonly Pipe _pipe = new(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0,
            minimumSegmentSize: ReadSize,
            useSynchronizationContext: false));

        private int _readSize = ReadSize;
        private bool _inFrame;

        /// <summary>Reads until at least one frame was handled and no block waits for its frame; false at end of stream.</summary>
        public bool ReadFrames(FrameHandler handle)
        {
            bool handled = false;
            try
            {
                while (!handled || !ReceivedBlocks.IsEmpty)
                {
                    if (!ReadOnce(handle, ref handled))
                    {
                        return false;
                    }
                }

                return true;
            }
            catch
            {
                ReceivedBlocks.Clear();
                throw;
            }
        }

        public void Dispose()
        {
            ReceivedBlocks.Clear();
            _pipe.Writer.Complete();
            _pipe.Reader.Complete();
        }

        private bool ReadOnce(FrameHandler handle, ref bool handled)
        {
            PipeWriter writer = _pipe.Writer;
            Memory<byte> memory = _readSize < LargeReadSize ? writer.GetMemory(_readSize) : LargeReadMemory(writer);
            int read = input.Read(memory.Span);
            if (read == 0)
            {
                return false;
            }

            writer.Advance(read);
            // Never waits: the pipe is a buffer this thread both fills and drains (no pause threshold).
            ValueTask<FlushResult> flushed = writer.FlushAsync();
            Debug.Assert(flushed.IsCompletedSuccessfully, "An unpaused pipe completes its flush at once.");
            if (!_pipe.Reader.TryRead(out ReadResult result))
            {
                return true;
            }

            ReadOnlySequence<byte> buffer = result.Buffer;
            long before = buffer.Length;
            Array? block = null;
            int filled = 0;
            int blockLength = 0;
            try
            {
                while (true)
                {
                    if (TryStartBlock(ref buffer, guard, out block, out filled, out blockLength))
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
                        handled = true;
                    }
                    else
                    {
                        break;
                    }
                }
            }
            finally
            {
                _readSize = NextReadSize(buffer, out long frameLength);
                _pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
                if (guard is not null)
                {
                    // Only when a frame starts or ends in pieces: a read of whole frames costs nothing here.
                    bool partial = block is not null || buffer.Length > 0;
                    if (partial && (!_inFrame || buffer.Length != before))
                    {
                        guard.OnFrameStarted(block is not null ? blockLength : frameLength);
                    }
                    else if (!partial && _inFrame)
                    {
                        guard.OnFrameCompleted();
                    }

                    _inFrame = partial;
                }
            }

            if (block is not null)
            {
                if (!ReadExactly(input, BytesOf(block, blockLength)[filled..]))
                {
                    return false;
                }

                ReceivedBlocks.Add(block);
                if (guard is not null)
                {
                    guard.OnFrameCompleted();
                    _inFrame = false;
                }
            }

            return true;
        }
    }

    /// <summary>
    /// When <paramref name="buffer"/> starts with a <see cref="MessageType.Block"/> frame: allocates its array,
    /// fills it with what the buffer holds and takes that off the buffer. When <paramref name="filled"/> is less
    /// than <paramref name="length"/>, the rest is still to be read (and the buffer is empty).
    /// </summary>
    private static bool TryStartBlock(ref ReadOnlySequence<byte> buffer, IFrameGuard? guard, [NotNullWhen(true)] out Array? block, out int filled, out int length)
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
        guard?.CheckBlock(header[5], length);
        block = RawTypes.AllocateBlock(header[5], length);
        filled = (int)Math.Min(buffer.Length - FrameWriter.BlockHeaderSize, length);
        buffer.Slice(FrameWriter.BlockHeaderSize, filled).CopyTo(BytesOf(block, length));
        buffer = buffer.Slice(FrameWriter.BlockHeaderSize + filled);
        return true;
    }

    /// <summary>
    /// Room for a read into a frame larger than <see cref="LargeReadSize"/> (or one whose length is forged): the rest
    /// of the current segment while it holds a quarter of that, else a new segment of that size. Asking for the full
    /// size every time took a new segment per read, however little the read brought: the fuzz test saw 64 MiB
    /// allocated for a 19 KiB stream with a forged length, read in small pieces.
    /// </summary>
    private static Memory<byte> LargeReadMemory(PipeWriter writer)
    {
        Memory<byte> rest = writer.GetMemory(1);
        return rest.Length >= LargeReadSize / 4 ? rest : writer.GetMemory(LargeReadSize);
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

    /// <summary>
    /// How much to ask for next: what the partial frame at the start of <paramref name="rest"/> still lacks, within
    /// bounds; <paramref name="frameLength"/> is that frame's whole length as declared, or -1 while its prefix is incomplete.
    /// </summary>
    private static int NextReadSize(ReadOnlySequence<byte> rest, out long frameLength)
    {
        frameLength = -1;
        if (rest.Length < 4)
        {
            return ReadSize;
        }

        Span<byte> prefix = stackalloc byte[4];
        rest.Slice(0, 4).CopyTo(prefix);
        frameLength = 4 + (long)BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        return (int)Math.Clamp(frameLength - rest.Length, ReadSize, LargeReadSize);
    }
}

/// <summary>
/// What <see cref="BlockingFrameReader"/> tells the side that does not trust its peer (the host): when a frame
/// arrives in pieces (so that one that never completes can be caught), and each block before its array is made.
/// Called on the reader's thread.
/// </summary>
internal interface IFrameGuard
{
    /// <summary>A frame of <paramref name="length"/> bytes (-1 while its length prefix is incomplete) has begun and is not all here.</summary>
    void OnFrameStarted(long length);

    /// <summary>No frame is in progress any more.</summary>
    void OnFrameCompleted();

    /// <summary>A block of <paramref name="length"/> bytes of the element type with <paramref name="code"/> is about to be allocated.</summary>
    /// <exception cref="ProtocolException">No task on this connection expects an array of that type.</exception>
    void CheckBlock(byte code, int length);
}
