using System.Buffers;
using System.Text;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MessagePack;
using MessagePack.Formatters;

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

    /// <summary>
    /// Throws what <see cref="Write"/> would throw for <paramref name="value"/>, where that is known without writing it
    /// (a string's lone surrogate), so that the call refuses it at once without writing a copy to check.
    /// </summary>
    public virtual void Validate(T value)
    {
    }

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

/// <summary>
/// A value that is not raw: an <c>int32</c> byte count, -1 for null, then its bytes. The count is read and the reader
/// moved past the bytes before they are decoded, so a value that fails to decode does not desynchronise the ones after it.
/// </summary>
internal abstract class LengthPrefixedCodec<T> : Codec<T>
{
    public sealed override int FixedSize => -1;

    public sealed override void Write(FrameWriter writer, T value)
    {
        if (value is null)
        {
            writer.WriteInt32(-1);
            return;
        }

        int position = writer.ReserveInt32();
        WriteValue(writer, value);
        writer.PatchInt32(position, writer.Position - position - 4);
    }

    public sealed override T Read(ref SequenceReader<byte> reader)
    {
        int length = reader.ReadInt32();
        return length < 0 ? default! : ReadValue(reader.ReadBytes(length));
    }

    protected abstract void WriteValue(FrameWriter writer, T value);

    protected abstract T ReadValue(ReadOnlySequence<byte> bytes);
}

/// <summary>
/// A string, with a serializer that writes strings itself (<see cref="PoolSerializer.WritesRawValues"/>): strict UTF-8,
/// the bytes <see cref="SerializedCodec{T}"/> writes through such a serializer. Whole UTF-16 always arrives as it was,
/// and a lone surrogate, which UTF-8 cannot carry, is refused where it is written (and at the call, by
/// <see cref="Validate"/>): no string is written and read back to be checked, which cost a call with a 10 MB string
/// three times its sending.
/// </summary>
internal sealed class StringCodec : LengthPrefixedCodec<string>
{
    public override void Validate(string value)
    {
        if (value is not null)
        {
            RawValues.EnsureWhole(value);
        }
    }

    protected override void WriteValue(FrameWriter writer, string value) => RawValues.WriteString(writer, value);

    protected override string ReadValue(ReadOnlySequence<byte> bytes) =>
        bytes.IsSingleSegment ? Encoding.UTF8.GetString(bytes.FirstSpan) : FromPieces(bytes);

    /// <summary>
    /// A string whose bytes arrived in several buffers (a large one): gathered into one, then decoded straight into the
    /// string. Decoding the pieces as they are grows a buffer of chars and copies it into the string at the end.
    /// </summary>
    private static string FromPieces(ReadOnlySequence<byte> bytes)
    {
        int length = (int)bytes.Length;
        byte[] whole = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            bytes.CopyTo(whole);
            return Encoding.UTF8.GetString(whole, 0, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(whole);
        }
    }
}

/// <summary>Any other value: what the serializer wrote.</summary>
internal sealed class SerializedCodec<T>(PoolSerializer serializer) : LengthPrefixedCodec<T>
{
    public override bool CanFail => true;

    public override PoolSerializer Serializer => serializer;

    protected override void WriteValue(FrameWriter writer, T value) => serializer.Serialize(writer, value);

    protected override T ReadValue(ReadOnlySequence<byte> bytes) => serializer.Deserialize<T>(bytes);
}

/// <summary>
/// A value of <see cref="MessagePackPoolSerializer"/> that is not raw, written as <see cref="SerializedCodec{T}"/> writes it
/// (a length, then MessagePack's bytes) but through the type's formatter, found once: no generic virtual call into
/// the serializer, no raw-type checks and no lookup of the formatter per value, the per-value costs of
/// <see cref="PoolSerializer.Serialize{T}"/> on a record. Failures are explained as the serializer explains them.
/// Options that need MessagePack's own entry points (compression, the old spec) take the serializer's path.
/// </summary>
internal sealed class MessagePackCodec<T>(MessagePackPoolSerializer serializer) : Codec<T>
{
    // Found once, published whole (one reference), as threads share the codec; null until then, or for the serializer's path.
    private Direct? _direct;
    private bool _serializerPath;

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
        if ((_direct ?? Find()) is { } direct)
        {
            var packer = new MessagePackWriter(writer);
            try
            {
                direct.Formatter.Serialize(ref packer, value, direct.Options);
            }
            catch (Exception e)
            {
                // As MessagePackSerializer.Serialize wraps it, then as the serializer explains it.
                throw MessagePackFailure.Explain(typeof(T), new MessagePackSerializationException($"Failed to serialize {typeof(T).FullName} value.", e), "write");
            }

            packer.Flush();
        }
        else
        {
            serializer.Serialize(writer, value);
        }

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
        if ((_direct ?? Find()) is not { } direct)
        {
            return serializer.Deserialize<T>(bytes);
        }

        var unpacker = new MessagePackReader(bytes);
        try
        {
            return direct.Formatter.Deserialize(ref unpacker, direct.Options);
        }
        catch (Exception e)
        {
            throw MessagePackFailure.Explain(typeof(T), new MessagePackSerializationException($"Failed to deserialize {typeof(T).FullName} value.", e), "read");
        }
    }

    /// <summary>The formatter, found on first use (as the serializer's options are made on first use); null when this type takes the serializer's path.</summary>
    private Direct? Find()
    {
        if (_serializerPath)
        {
            return null;
        }

        MessagePackSerializerOptions options = serializer.Options;
        if (options.Compression != MessagePackCompression.None || options.OldSpec is not null)
        {
            _serializerPath = true;
            return null;
        }

        try
        {
            return _direct = new Direct(options.Resolver.GetFormatterWithVerify<T>(), options);
        }
        catch (Exception e) when (e is FormatterNotRegisteredException or TypeInitializationException or MessagePackSerializationException)
        {
            // No formatter (an interface without [Union]): the serializer's own path throws the error it explains, value by value.
            _serializerPath = true;
            return null;
        }
    }

    private sealed record Direct(IMessagePackFormatter<T> Formatter, MessagePackSerializerOptions Options);
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

        if (typeof(T) == typeof(string))
        {
            return (Codec<T>)(object)new StringCodec();
        }

        if (typeof(T).IsSZArray && typeof(T).GetElementType() is { } element && RawTypes.IsRaw(element))
        {
            return (Codec<T>)Activator.CreateInstance(typeof(RawElementsCodec<>).MakeGenericType(element))!;
        }

        // The default serializer's values that are not raw (records, classes, lists): straight to MessagePack's formatter.
        return serializer is MessagePackPoolSerializer messagePack
            ? new MessagePackCodec<T>(messagePack)
            : new SerializedCodec<T>(serializer);
    }
}
