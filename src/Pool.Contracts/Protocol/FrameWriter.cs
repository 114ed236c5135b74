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
/// A writer made with <c>referenceLargeBlocks</c> does not copy a large block of raw bytes (an array of
/// numbers): it keeps a reference to it and <see cref="WriteTo"/> writes it from where it is, so a megabyte
/// argument goes from the caller's array to the pipe with no copy of ours. Such a block must not change until
/// <see cref="WriteTo"/>. Positions count those blocks' bytes as if they had been copied.
/// One writer at a time: it is not thread-safe.
/// </summary>
internal sealed class FrameWriter : IBufferWriter<byte>, IDisposable
{
    private const int DefaultSize = 64 * 1024;
    private const int KeepAtMost = 4 * 1024 * 1024;

    /// <summary>Blocks of at least this many bytes are referenced rather than copied, when the writer allows it.</summary>
    public const int LargeBlock = 128 * 1024;

    private readonly bool _referenceLargeBlocks;
    private readonly List<Block> _blocks = [];
    private byte[] _buffer;
    private int _written;
    private int _referenced;
    private int _frameStart = -1;

    public FrameWriter(int initialSize = DefaultSize, bool referenceLargeBlocks = false)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
        _referenceLargeBlocks = referenceLargeBlocks;
    }

    /// <summary>Bytes written so far: also the position of the next byte.</summary>
    public int Position => _written + _referenced;

    /// <summary>Whether a frame is begun and not ended.</summary>
    public bool HasOpenFrame => _frameStart >= 0;

    /// <summary>Whether some of what was written is a reference to a caller's block (see <see cref="WriteLarge"/>).</summary>
    public bool HasReferences => _blocks.Count > 0;

    /// <summary>Everything written since the last <see cref="Reset"/>, for a writer that holds no references.</summary>
    public ReadOnlyMemory<byte> WrittenMemory
    {
        get
        {
            Debug.Assert(_blocks.Count == 0, "A writer that references blocks is sent with WriteTo.");
            return _buffer.AsMemory(0, _written);
        }
    }

    /// <summary>Writes everything written since the last <see cref="Reset"/> to <paramref name="output"/>, in order.</summary>
    public void WriteTo(Stream output)
    {
        int from = 0;
        foreach (Block block in _blocks)
        {
            output.Write(_buffer, from, block.At - from);
            output.Write(MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(block.Array), block.Length));
            from = block.At;
        }

        output.Write(_buffer, from, _written - from);
    }

    /// <summary>
    /// Writes the bytes of <paramref name="array"/>: a large one, when this writer allows it, by reference (it
    /// must stay unchanged until <see cref="WriteTo"/>), anything else by copy.
    /// </summary>
    public void WriteLarge<T>(T[] array)
        where T : unmanaged
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(array.AsSpan());
        if (!_referenceLargeBlocks || bytes.Length < LargeBlock)
        {
            WriteBytes(bytes);
            return;
        }

        _blocks.Add(new Block(_written, Position, array, bytes.Length));
        _referenced += bytes.Length;
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
        while (_blocks.Count > 0 && _blocks[^1].Position >= position)
        {
            _referenced -= _blocks[^1].Length;
            _blocks.RemoveAt(_blocks.Count - 1);
        }

        _written = position - _referenced;
    }

    /// <summary>Forgets what was written; a buffer grown very large goes back to the pool.</summary>
    public void Reset()
    {
        _written = 0;
        _referenced = 0;
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

    /// <summary>A length (-1 for null) and the UTF-8 bytes.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteInt32(-1);
            return;
        }

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
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(BufferIndex(position), 4), value);

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

    /// <summary>Where the byte at <paramref name="position"/> sits in the buffer: its position less the referenced bytes before it.</summary>
    private int BufferIndex(int position)
    {
        for (int i = _blocks.Count - 1; i >= 0; i--)
        {
            if (_blocks[i].Position < position)
            {
                // Blocks are in order, and an int32 or a frame start never lies inside one.
                return position - _blocks[i].Position - _blocks[i].Length + _blocks[i].At;
            }
        }

        return position;
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
            throw new InvalidOperationException($"Cannot buffer {sizeHint} more bytes after {_written}: the message is too large.");
        }

        byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    /// <summary>A referenced block: it goes before buffer byte <see cref="At"/>, and begins at <see cref="Position"/> of the whole.</summary>
    private readonly record struct Block(int At, int Position, Array Array, int Length);
}
