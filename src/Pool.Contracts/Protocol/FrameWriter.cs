using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Pool.Contracts;

/// <summary>
/// A growable buffer, rented from the array pool, that frames are written into and then sent in one write.
/// Because the buffer is ours, a frame's length and an item's length prefix are written after their
/// contents (<see cref="ReserveInt32"/>, <see cref="PatchInt32"/>), and a value that fails to serialize is
/// rolled back (<see cref="Truncate"/>). Values are written through its <see cref="IBufferWriter{T}"/> face.
/// A writer made with <c>sendBlocks</c> sends a large array of raw elements (<see cref="TryWriteBlock"/>) in
/// a <see cref="MessageType.Block"/> frame of its own, just before the frame that refers to it, and without
/// copying it: <see cref="WriteTo"/> writes it from where it is, and the reader puts it straight into the
/// array it hands to the decoder (<see cref="BlockingFrameReader"/>). Such an array must not change until
/// <see cref="WriteTo"/>. Positions count only the bytes of frames written here, not blocks.
/// One writer at a time: it is not thread-safe.
/// </summary>
internal sealed class FrameWriter : IBufferWriter<byte>, IDisposable
{
    private const int DefaultSize = 64 * 1024;
    private const int KeepAtMost = 4 * 1024 * 1024;

    /// <summary>Arrays of at least this many bytes go in a block frame of their own, when the writer allows it.</summary>
    public const int LargeBlock = 128 * 1024;

    /// <summary>A block frame's header: the length, the type and the element type's code (<see cref="RawTypes.BlockCode{T}"/>).</summary>
    public const int BlockHeaderSize = Framing.HeaderSize + 1;

    private readonly bool _sendBlocks;
    private readonly List<Block> _blocks = [];
    private byte[] _buffer;
    private int _written;
    private long _blockBytes;
    private int _frameStart = -1;

    public FrameWriter(int initialSize = DefaultSize, bool sendBlocks = false)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
        _sendBlocks = sendBlocks;
    }

    /// <summary>Bytes written to frames so far: also the position of the next byte.</summary>
    public int Position => _written;

    /// <summary>Bytes that <see cref="WriteTo"/> would send: the frames and the blocks.</summary>
    public long Length => _written + _blockBytes;

    /// <summary>Whether a frame is begun and not ended.</summary>
    public bool HasOpenFrame => _frameStart >= 0;

    /// <summary>Whether some of what is to be sent is a caller's array (see <see cref="TryWriteBlock"/>).</summary>
    public bool HasBlocks => _blocks.Count > 0;

    /// <summary>Everything written since the last <see cref="Reset"/>, for a writer that holds no blocks.</summary>
    public ReadOnlyMemory<byte> WrittenMemory
    {
        get
        {
            Debug.Assert(_blocks.Count == 0, "A writer that holds blocks is sent with WriteTo.");
            return _buffer.AsMemory(0, _written);
        }
    }

    /// <summary>The frame bytes written from <paramref name="position"/> on (a value just written that holds no block).</summary>
    public ReadOnlyMemory<byte> WrittenSince(int position) => _buffer.AsMemory(position, _written - position);

    /// <summary>Writes everything written since the last <see cref="Reset"/> to <paramref name="output"/>, in order,
    /// each block in its frame just before the frame that refers to it.</summary>
    public void WriteTo(Stream output)
    {
        if (_blocks.Count == 0)
        {
            output.Write(_buffer, 0, _written);
            return;
        }

        const int MergeAtMost = 4096;
        Span<byte> merged = stackalloc byte[MergeAtMost + BlockHeaderSize];
        int from = 0;
        foreach (Block block in _blocks)
        {
            // What comes before the block and the block's header go in one write when that is small: one
            // system call and one wake-up of the reader fewer per block.
            int before = block.At - from;
            Span<byte> header = before <= MergeAtMost ? merged[before..(before + BlockHeaderSize)] : merged[..BlockHeaderSize];
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(block.Length + 2));
            header[4] = (byte)MessageType.Block;
            header[5] = block.TypeCode;
            if (before <= MergeAtMost)
            {
                _buffer.AsSpan(from, before).CopyTo(merged);
                output.Write(merged[..(before + BlockHeaderSize)]);
            }
            else
            {
                output.Write(_buffer, from, before);
                output.Write(header);
            }

            output.Write(MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(block.Array), block.Length));
            from = block.At;
        }

        if (_written > from)
        {
            output.Write(_buffer, from, _written - from);
        }
    }

    /// <summary>
    /// Sends <paramref name="array"/> in a block frame of its own, ahead of the open frame, when this writer
    /// allows it and the array is large and of a block type (<see cref="RawTypes.BlockCode{T}"/>); it must stay
    /// unchanged until <see cref="WriteTo"/>. The reader's decoder takes it with <see cref="ReceivedBlocks.Take{T}"/>.
    /// </summary>
    /// <returns><see langword="false"/> when the array was not taken: the caller writes it inline.</returns>
    public bool TryWriteBlock<T>(T[] array)
        where T : unmanaged
    {
        long length = (long)array.Length * Unsafe.SizeOf<T>();
        if (!_sendBlocks || _frameStart < 0 || length < LargeBlock || length > Framing.MaxFrameLength - 2
            || RawTypes.BlockCode<T>.Code is not (>= 0 and var code))
        {
            return false;
        }

        _blocks.Add(new Block(_frameStart, _written, array, (int)length, (byte)code));
        _blockBytes += length + BlockHeaderSize;
        return true;
    }

    public void BeginFrame(MessageType type)
    {
        Debug.Assert(_frameStart < 0, "A frame is already open.");
        _frameStart = Position;
        Span<byte> header = GetSpan(Framing.HeaderSize);
        header[4] = (byte)type;
        _written += Framing.HeaderSize;
    }

    public void EndFrame()
    {
        Debug.Assert(_frameStart >= 0, "No frame is open.");
        int length = Position - _frameStart - 4;
        if (length > Framing.MaxFrameLength)
        {
            Truncate(_frameStart);
            _frameStart = -1;
            throw new InvalidOperationException(
                $"A message of {length} bytes exceeds the {Framing.MaxFrameLength}-byte frame limit; send smaller chunks or smaller values.");
        }

        PatchInt32(_frameStart, length);
        _frameStart = -1;
    }

    /// <summary>Drops the open frame, as if it had never been begun.</summary>
    public void AbandonFrame()
    {
        Debug.Assert(_frameStart >= 0, "No frame is open.");
        Truncate(_frameStart);
        _frameStart = -1;
    }

    /// <summary>Drops everything written after <paramref name="position"/> (a value that failed to serialize).</summary>
    public void Truncate(int position)
    {
        Debug.Assert(position <= Position && position >= Math.Max(_frameStart, 0), "Truncate outside the open frame.");
        while (_blocks.Count > 0 && _blocks[^1].Owner >= position)
        {
            _blockBytes -= _blocks[^1].Length + BlockHeaderSize;
            _blocks.RemoveAt(_blocks.Count - 1);
        }

        _written = position;
    }

    /// <summary>Forgets what was written; a buffer grown very large goes back to the pool.</summary>
    public void Reset()
    {
        _written = 0;
        _blockBytes = 0;
        _blocks.Clear();
        _frameStart = -1;
        if (_buffer.Length > KeepAtMost)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(DefaultSize);
        }
    }

    /// <summary>The bytes of an unmanaged value, as they are in memory.</summary>
    public void WriteRaw<T>(T value)
    {
        int size = Unsafe.SizeOf<T>();
        if (_buffer.Length - _written < size)
        {
            Ensure(size);
        }

        Unsafe.WriteUnaligned(ref _buffer[_written], value);
        _written += size;
    }

    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        _written++;
    }

    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(GetSpan(4), value);
        _written += 4;
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(GetSpan(8), value);
        _written += 8;
    }

    public void WriteGuid(Guid value)
    {
        value.TryWriteBytes(GetSpan(16));
        _written += 16;
    }

    /// <summary>A length (-1 for null) and the UTF-8 bytes; a lone surrogate, which UTF-8 cannot carry, as its escape (<see cref="Escaped"/>).</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteInt32(-1);
            return;
        }

        value = Escaped(value);

        int count = Encoding.UTF8.GetByteCount(value);
        WriteInt32(count);
        Encoding.UTF8.GetBytes(value, GetSpan(count));
        _written += count;
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _written += bytes.Length;
    }

    /// <summary>Leaves room for an <c>int32</c> written later with <see cref="PatchInt32"/>.</summary>
    public int ReserveInt32()
    {
        int position = Position;
        GetSpan(4);
        _written += 4;
        return position;
    }

    public void PatchInt32(int position, int value) =>
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(position, 4), value);

    public void Advance(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count), "Advanced past the end of the buffer.");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Dispose()
    {
        byte[] buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1)
        {
            sizeHint = 256;
        }

        if (_buffer.Length - _written >= sizeHint)
        {
            return;
        }

        long wanted = Math.Max((long)_buffer.Length * 2, (long)_written + sizeHint);
        int size = (int)Math.Min(wanted, Array.MaxLength);
        if (size - _written < sizeHint)
        {
            throw new InvalidOperationException(
                $"Cannot buffer {sizeHint} more bytes after {_written}: the message is too large (2 GiB at most). If the value refers to one " +
                "object many times (a large array shared by many items), each reference is written in full: send the shared part once per " +
                "worker (WithInitializer, kept in a static field) and the items without it.");
        }

        byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    /// <summary>A block to send before buffer byte <see cref="At"/> (the start of the frame that refers to it),
    /// dropped with the value written at <see cref="Owner"/>.</summary>
    private readonly record struct Block(int At, int Owner, Array Array, int Length, byte TypeCode);

    /// <summary>
    /// The text with each lone surrogate written as its escape (<c>\uD800</c>): UTF-8 cannot carry one, and the protocol's
    /// text (an exception's message, its state) should not change silently into U+FFFD. A value with one is refused
    /// instead (RawValues), but an error must still arrive.
    /// </summary>
    internal static string Escaped(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            return text;
        }

        var escaped = new System.Text.StringBuilder(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                escaped.Append(c).Append(text[++i]);
            }
            else if (char.IsSurrogate(c))
            {
                escaped.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }
}
