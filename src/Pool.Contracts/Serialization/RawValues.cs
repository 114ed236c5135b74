using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;

namespace Pool.Contracts;

/// <summary>
/// What the pool's own serializers (<see cref="MessagePackPoolSerializer"/>, <see cref="JsonPoolSerializer"/>) write
/// without an encoding: raw values as their bytes, strings as strict UTF-8, arrays of raw values as their elements'
/// bytes. Each check is on the value's static type alone, a constant once the JIT has seen it.
/// </summary>
internal static class RawValues
{
    /// <summary>UTF-8 that refuses a lone surrogate instead of writing U+FFFD in its place.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes <paramref name="value"/> when its type is one of these; false for any other type.</summary>
    /// <exception cref="ArgumentException">A string with a lone surrogate, which UTF-8 cannot carry.</exception>
    public static bool TryWrite<T>(IBufferWriter<byte> writer, T value)
    {
        if (RawType<T>.IsRaw)
        {
            int size = Unsafe.SizeOf<T>();
            Unsafe.WriteUnaligned(ref writer.GetSpan(size)[0], value);
            writer.Advance(size);
            return true;
        }

        if (typeof(T) == typeof(string))
        {
            WriteString(writer, Unsafe.As<T, string>(ref value));
            return true;
        }

        if (RawArrayCodec<T>.Instance is { } arrays)
        {
            arrays.Write(writer, value);
            return true;
        }

        return false;
    }

    /// <summary>Reads a value that <see cref="TryWrite{T}"/> wrote; false for a type it does not write.</summary>
    public static bool TryRead<T>(ReadOnlySequence<byte> data, out T value)
    {
        if (RawType<T>.IsRaw)
        {
            int size = Unsafe.SizeOf<T>();
            if (data.Length != size)
            {
                throw new InvalidDataException($"Expected {size} bytes of {typeof(T).Name}, got {data.Length}.");
            }

            Span<byte> bytes = stackalloc byte[size];
            data.CopyTo(bytes);
            value = Unsafe.ReadUnaligned<T>(ref bytes[0]);
            return true;
        }

        if (typeof(T) == typeof(string))
        {
            string text = data.IsSingleSegment ? Encoding.UTF8.GetString(data.FirstSpan) : Encoding.UTF8.GetString(data);
            value = Unsafe.As<string, T>(ref text);
            return true;
        }

        if (RawArrayCodec<T>.Instance is { } arrays)
        {
            value = arrays.Read(data);
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Writes <paramref name="text"/> as strict UTF-8.</summary>
    /// <exception cref="ArgumentException">It has a lone surrogate.</exception>
    public static void WriteString(IBufferWriter<byte> writer, string text)
    {
        int count = EnsureWhole(text);
        StrictUtf8.GetBytes(text, writer.GetSpan(count));
        writer.Advance(count);
    }

    /// <summary>Checks that <paramref name="text"/> is whole UTF-16 (no lone surrogate); returns its UTF-8 byte count.</summary>
    /// <exception cref="ArgumentException">It has a lone surrogate, which UTF-8 cannot carry.</exception>
    public static int EnsureWhole(string text)
    {
        try
        {
            return StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException(
                $"The string has a lone surrogate (\\u{(int)e.CharUnknown:X4}) at index {e.Index}, which UTF-8 cannot carry; " +
                "a worker would get U+FFFD in its place. Pass text that is whole UTF-16 (a cut string often splits a pair), or a char[].",
                e);
        }
    }
}
