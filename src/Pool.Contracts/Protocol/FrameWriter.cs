using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace Pool.Contracts;

/// <summary>
/// A growable buffer, rented from the array pool, that frames are written into and then sent in one write.
/// Because the buffer is ours, a frame's length and an item's length prefix are written after their
/// contents (<see cref="ReserveInt32"/>, <see cref="PatchInt32"/>), and a value that fails to serialize is
/// rolled back (<see cref="Truncate"/>). Values are written through its <see cref="IBufferWriter{T}"/> face.
/// One writer at a time: it is not thread-safe.
/// </summary>
internal sealed class FrameWriter : IBufferWriter<byte>, IDisposable
{
    private const int DefaultSize = 64 * 1024;
    private const int KeepAtMost = 4 * 1024 * 1024;

    private byte[] _buffer;
    private int _written;
    private int _frameStart = -1;

    public FrameWriter(int initialSize = DefaultSize)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    }

    /// <summary>Bytes written so far: also the position of the next byte.</summary>
    public int Position => _written;

    /// <summary>Whether a frame is begun and not ended.</summary>
    public bool HasOpenFrame => _frameStart >= 0;

    /// <summary>Everything written since the last <see cref="Reset"/>.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public void BeginFrame(MessageType type)
    {
        Debug.Assert(_frameStart < 0, "A frame is already open.");
        _frameStart = _written;
        Span<byte> header = GetSpan(Framing.HeaderSize);
        header[4] = (byte)type;
        _written += Framing.HeaderSize;
    }

    public void EndFrame()
    {
        Debug.Assert(_frameStart >= 0, "No frame is open.");
        int length = _written - _frameStart - 4;
        if (length > Framing.MaxFrameLength)
        {
            _written = _frameStart;
            _frameStart = -1;
            throw new InvalidOperationException(
                $"A message of {length} bytes exceeds the {Framing.MaxFrameLength}-byte frame limit; send smaller chunks or smaller values.");
        }

        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_frameStart), length);
        _frameStart = -1;
    }

    /// <summary>Drops the open frame, as if it had never been begun.</summary>
    public void AbandonFrame()
    {
        Debug.Assert(_frameStart >= 0, "No frame is open.");
        _written = _frameStart;
        _frameStart = -1;
    }

    /// <summary>Drops everything written after <paramref name="position"/> (a value that failed to serialize).</summary>
    public void Truncate(int position)
    {
        Debug.Assert(position <= _written && position >= Math.Max(_frameStart, 0), "Truncate outside the open frame.");
        _written = position;
    }

    /// <summary>Forgets what was written; a buffer grown very large goes back to the pool.</summary>
    public void Reset()
    {
        _written = 0;
        _frameStart = -1;
        if (_buffer.Length > KeepAtMost)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(DefaultSize);
        }
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
        int position = _written;
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
            throw new InvalidOperationException($"Cannot buffer {sizeHint} more bytes after {_written}: the message is too large.");
        }

        byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }
}
