using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pool.Contracts;

/// <summary>
/// How one value of type <typeparamref name="T"/> sits in a frame. Raw values have a fixed size and no
/// framing, so a chunk of ints is one block of bytes; arrays of raw values are a byte count and their bytes,
/// or a block of their own (<see cref="RawElementsCodec{TElement}"/>), with a serializer that writes them so; every other value is a length (-1 for
/// null) and what the <see cref="PoolSerializer"/> wrote. A value that fails to read leaves the reader after it.
/// </summary>
internal abstract class Codec<T>
{
    /// <summary>Bytes per value when every value has the same size, else -1.</summary>
    public abstract int FixedSize { get; }

    /// <summary>Whether a value goes through the serializer, so that it can fail to travel or arrive different.</summary>
    public virtual bool CanFail => false;

    /// <summary>The serializer a value goes through, when <see cref="CanFail"/>.</summary>
    public virtual PoolSerializer? Serializer => null;

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

    public override bool CanFail => true;

    public override PoolSerializer Serializer => serializer;

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

/// <summary>
/// An array of raw elements (with a serializer that <see cref="PoolSerializer.WritesRawValues"/>): an <c>int32</c> byte count (-1 for null) and the
/// elements' bytes, or <see cref="InBlock"/> when the array went ahead of the frame in a
/// <see cref="MessageType.Block"/> frame of its own (a large one, from a writer that sends blocks), so
/// that neither side copies it.
/// </summary>
internal sealed class RawElementsCodec<TElement> : Codec<TElement[]>
    where TElement : unmanaged
{
    /// <summary>The count that stands for "the next received block".</summary>
    public const int InBlock = -2;

    public override int FixedSize => -1;

    public override void Write(FrameWriter writer, TElement[] value)
    {
        if (value is null)
        {
            writer.WriteInt32(-1);
        }
        else if (writer.TryWriteBlock(value))
        {
            writer.WriteInt32(InBlock);
        }
        else
        {
            ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(value.AsSpan());
            writer.WriteInt32(bytes.Length);
            writer.WriteBytes(bytes);
        }
    }

    public override TElement[] Read(ref SequenceReader<byte> reader)
    {
        int length = reader.ReadInt32();
        switch (length)
        {
            case -1:
                return null!;
            case InBlock:
                return ReceivedBlocks.Take<TElement>();
            case < 0:
                throw new ProtocolException($"An array of {typeof(TElement).Name} declared {length} bytes.");
        }

        // Advance first: a value that fails to read must not desynchronise the ones after it.
        return RawArrayCodecOf<TElement>.FromBytes(reader.ReadBytes(length));
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

    private static Codec<T> Create<T>(PoolSerializer serializer)
    {
        if (!serializer.WritesRawValues)
        {
            return new SerializedCodec<T>(serializer);
        }

        if (RawType<T>.IsRaw)
        {
            return new RawCodec<T>();
        }

        return typeof(T).IsSZArray && typeof(T).GetElementType() is { } element && RawTypes.IsRaw(element)
            ? (Codec<T>)Activator.CreateInstance(typeof(RawElementsCodec<>).MakeGenericType(element))!
            : new SerializedCodec<T>(serializer);
    }
}
