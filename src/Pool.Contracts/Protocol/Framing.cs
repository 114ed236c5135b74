using System.Buffers;
using System.Buffers.Binary;

namespace Pool.Contracts;

/// <summary>
/// Length-prefixed frames: a little-endian <c>uint32</c> length (of what follows it), one
/// <see cref="MessageType"/> byte, then the payload. Both ends parse with <see cref="TryReadFrame"/> over
/// the buffer of a <see cref="System.IO.Pipelines.PipeReader"/>; one read is never assumed to be one frame.
/// </summary>
internal static class Framing
{
    /// <summary>Bytes before the payload: the length and the type.</summary>
    public const int HeaderSize = 5;

    /// <summary>A frame longer than this is a corrupt stream, not a message (1 GiB).</summary>
    public const int MaxFrameLength = 1 << 30;

    /// <summary>Takes one whole frame off the front of <paramref name="buffer"/>, if it holds one.</summary>
    /// <returns><see langword="false"/> when more bytes are needed; <paramref name="buffer"/> is then unchanged.</returns>
    /// <exception cref="ProtocolException">The length prefix is out of range.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out MessageType type, out ReadOnlySequence<byte> payload)
    {
        if (buffer.Length < HeaderSize)
        {
            type = default;
            payload = default;
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length < 1 || length > MaxFrameLength)
        {
            throw new ProtocolException($"A frame declared a length of {length} bytes; the stream is corrupt.");
        }

        if (buffer.Length - 4 < length)
        {
            type = default;
            payload = default;
            return false;
        }

        type = (MessageType)header[4];
        payload = buffer.Slice(HeaderSize, length - 1);
        buffer = buffer.Slice(payload.End);
        return true;
    }
}

/// <summary>The bytes on a pipe do not follow the protocol: a bug, or another program on the pipe.</summary>
public sealed class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
