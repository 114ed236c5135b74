using System.Buffers;
using System.Text;

namespace Pool.Contracts;

/// <summary>Reads the fields that <see cref="FrameWriter"/> writes; a short payload is a <see cref="ProtocolException"/>.</summary>
internal static class WireReader
{
    public static byte ReadByte(this ref SequenceReader<byte> reader) =>
        reader.TryRead(out byte value) ? value : throw Truncated();

    public static int ReadInt32(this ref SequenceReader<byte> reader) =>
        reader.TryReadLittleEndian(out int value) ? value : throw Truncated();

    public static long ReadInt64(this ref SequenceReader<byte> reader) =>
        reader.TryReadLittleEndian(out long value) ? value : throw Truncated();

    public static Guid ReadGuid(this ref SequenceReader<byte> reader)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!reader.TryCopyTo(bytes))
        {
            throw Truncated();
        }

        reader.Advance(16);
        return new Guid(bytes);
    }

    public static string? ReadString(this ref SequenceReader<byte> reader)
    {
        int length = reader.ReadInt32();
        if (length < 0)
        {
            return null;
        }

        ReadOnlySequence<byte> bytes = reader.ReadBytes(length);
        return bytes.IsSingleSegment ? Encoding.UTF8.GetString(bytes.FirstSpan) : Encoding.UTF8.GetString(bytes);
    }

    public static string ReadRequiredString(this ref SequenceReader<byte> reader) =>
        reader.ReadString() ?? throw new ProtocolException("A required string was null.");

    public static ReadOnlySequence<byte> ReadBytes(this ref SequenceReader<byte> reader, int length)
    {
        if (length < 0 || reader.Remaining < length)
        {
            throw Truncated();
        }

        ReadOnlySequence<byte> bytes = reader.Sequence.Slice(reader.Position, length);
        reader.Advance(length);
        return bytes;
    }

    public static ProtocolException Truncated() => new("A message ended before its last field.");
}
