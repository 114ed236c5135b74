using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pool.Contracts;

/// <summary>
/// How one value of type <typeparamref name="T"/> sits in a frame. Raw values have a fixed size and no
/// framing, so a chunk of ints is one block of bytes; every other value is a length (-1 for null) and
/// what the <see cref="PoolSerializer"/> wrote. A value that fails to read leaves the reader after it.
/// </summary>
internal abstract class Codec<T>
{
    /// <summary>Bytes per value when every value has the same size, else -1.</summary>
    public abstract int FixedSize { get; }

    public abstract void Write(FrameWriter writer, T value);

    public abstract T Read(ref SequenceReader<byte> reader);

    public virtual void WriteMany(FrameWriter writer, ReadOnlySpan<T> values)
    {
        foreach (T value in values)
        {
            Write(writer, value);
        }
    }

    public virtual void ReadMany(ref SequenceReader<byte> reader, Span<T> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Read(ref reader);
        }
    }
}

/// <summary>A raw value: its bytes, nothing else.</summary>
internal sealed class RawCodec<T> : Codec<T>
{
    private static readonly int Size = Unsafe.SizeOf<T>();

    public override int FixedSize => Size;

    public override void Write(FrameWriter writer, T value) => writer.WriteRaw(value);

    public override T Read(ref SequenceReader<byte> reader)
    {
        ReadOnlySpan<byte> unread = reader.UnreadSpan;
        T value;
        if (unread.Length >= Size)
        {
            value = Unsafe.ReadUnaligned<T>(ref MemoryMarshal.GetReference(unread));
        }
        else
        {
            Span<byte> bytes = stackalloc byte[Size];
            if (!reader.TryCopyTo(bytes))
            {
                throw WireReader.Truncated();
            }

            value = Unsafe.ReadUnaligned<T>(ref bytes[0]);
        }

        reader.Advance(Size);
        return value;
    }

    public override void WriteMany(FrameWriter writer, ReadOnlySpan<T> values) =>
        writer.WriteBytes(MemoryMarshal.CreateReadOnlySpan(
            ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(values)), values.Length * Size));

    public override void ReadMany(ref SequenceReader<byte> reader, Span<T> values)
    {
        Span<byte> bytes = MemoryMarshal.CreateSpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(values)), values.Length * Size);
        if (!reader.TryCopyTo(bytes))
        {
            throw WireReader.Truncated();
        }

        reader.Advance(bytes.Length);
    }
}

/// <summary>Any other value: an <c>int32</c> length, -1 for null, then the serializer's bytes.</summary>
internal sealed class SerializedCodec<T>(PoolSerializer serializer) : Codec<T>
{
    public override int FixedSize => -1;

    public override void Write(FrameWriter writer, T value)
    {
        if (value is null)
        {
            writer.WriteInt32(-1);
            return;
        }

        int position = writer.ReserveInt32();
        serializer.Serialize(writer, value);
        writer.PatchInt32(position, writer.Position - position - 4);
    }

    public override T Read(ref SequenceReader<byte> reader)
    {
        int length = reader.ReadInt32();
        if (length < 0)
        {
            return default!;
        }

        // Advance first: a value that fails to deserialize must not desynchronise the ones after it.
        ReadOnlySequence<byte> bytes = reader.ReadBytes(length);
        return serializer.Deserialize<T>(bytes);
    }
}

/// <summary>The codecs of one serializer, made once per type.</summary>
internal sealed class CodecProvider(PoolSerializer serializer)
{
    private static readonly MethodInfo GetMethod = typeof(CodecProvider).GetMethod(nameof(Get), Type.EmptyTypes)!;

    private readonly ConcurrentDictionary<Type, object> _codecs = new();

    public PoolSerializer Serializer => serializer;

    public Codec<T> Get<T>() => (Codec<T>)_codecs.GetOrAdd(typeof(T), static (_, s) => Create<T>(s), serializer);

    /// <summary>The codec for a type known only at run time (the worker's side): a <c>Codec&lt;T&gt;</c>.</summary>
    public object Get(Type type) => _codecs.TryGetValue(type, out object? codec)
        ? codec
        : GetMethod.MakeGenericMethod(type).Invoke(this, null)!;

    private static Codec<T> Create<T>(PoolSerializer serializer) =>
        serializer is JsonPoolSerializer && RawType<T>.IsRaw ? new RawCodec<T>() : new SerializedCodec<T>(serializer);
}
