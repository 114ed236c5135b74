using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pool.Contracts;

/// <summary>
/// Types whose bytes are their value on any process of this machine: numbers, <see cref="bool"/>,
/// <see cref="char"/>, enums and a few fixed-layout structs of the base library. Pointers and handles are
/// not among them: their bytes mean nothing in another process.
/// </summary>
internal static class RawTypes
{
    private static readonly HashSet<Type> Structs =
    [
        typeof(decimal), typeof(Half), typeof(Int128), typeof(UInt128), typeof(DateTime), typeof(TimeSpan),
        typeof(DateTimeOffset), typeof(Guid), typeof(DateOnly), typeof(TimeOnly), typeof(ValueTuple),
    ];

    public static bool IsRaw(Type type) =>
        (type.IsPrimitive && type != typeof(IntPtr) && type != typeof(UIntPtr)) || type.IsEnum || Structs.Contains(type);

    /// <summary>A new array, not zeroed, for a block of <paramref name="byteLength"/> bytes of the type with <paramref name="code"/>.</summary>
    /// <exception cref="ProtocolException">The code is unknown, or the length is not a whole number of elements.</exception>
    public static Array AllocateBlock(byte code, int byteLength)
    {
        if (code >= Blocks.Types.Length)
        {
            throw new ProtocolException($"A block names element type code {code}, which this version does not know.");
        }

        BlockType type = Blocks.Types[code];
        return byteLength % type.Size == 0
            ? type.Allocate(byteLength / type.Size)
            : throw new ProtocolException($"A block of {byteLength} bytes is not a whole number of {type.Type.Name} values.");
    }

    /// <summary>Per element type, its code in <see cref="Blocks.Types"/>, or -1 when its arrays do not travel as blocks.</summary>
    public static class BlockCode<T>
        where T : unmanaged
    {
        public static readonly int Code = Array.FindIndex(Blocks.Types, t => t.Type == typeof(T));
    }

    /// <summary>Made on first use, so that a process that never sends a large array does not compile the table at start-up.</summary>
    private static class Blocks
    {
        /// <summary>The element types of arrays that travel as <see cref="MessageType.Block"/> frames; the index is
        /// the code on the wire. Enums are not among them: the reader could not name the type from a code.</summary>
        public static readonly BlockType[] Types =
        [
            BlockType.Of<byte>(), BlockType.Of<sbyte>(), BlockType.Of<bool>(), BlockType.Of<char>(),
            BlockType.Of<short>(), BlockType.Of<ushort>(), BlockType.Of<int>(), BlockType.Of<uint>(),
            BlockType.Of<long>(), BlockType.Of<ulong>(), BlockType.Of<float>(), BlockType.Of<double>(),
            BlockType.Of<decimal>(), BlockType.Of<Half>(), BlockType.Of<Int128>(), BlockType.Of<UInt128>(),
            BlockType.Of<DateTime>(), BlockType.Of<TimeSpan>(), BlockType.Of<DateTimeOffset>(), BlockType.Of<Guid>(),
            BlockType.Of<DateOnly>(), BlockType.Of<TimeOnly>(),
        ];
    }

    private sealed record BlockType(Type Type, int Size, Func<int, Array> Allocate)
    {
        public static BlockType Of<T>()
            where T : unmanaged => new(typeof(T), Unsafe.SizeOf<T>(), static count => GC.AllocateUninitializedArray<T>(count));
    }
}

/// <summary>Per type, whether <typeparamref name="T"/> is raw; a constant once the JIT has seen it.</summary>
internal static class RawType<T>
{
    public static readonly bool IsRaw = RawTypes.IsRaw(typeof(T));
}

/// <summary>Raw encoding of arrays of raw elements: the elements' bytes, no per-element framing.</summary>
internal abstract class RawArrayCodec<T>
{
    /// <summary>The codec when <typeparamref name="T"/> is an array of a raw type, else null.</summary>
    public static readonly RawArrayCodec<T>? Instance = Create();

    public abstract void Write(IBufferWriter<byte> writer, T value);

    public abstract T Read(ReadOnlySequence<byte> data);

    private static RawArrayCodec<T>? Create()
    {
        Type type = typeof(T);
        if (!type.IsSZArray || type.GetElementType() is not { } element || !RawTypes.IsRaw(element))
        {
            return null;
        }

        return (RawArrayCodec<T>)Activator.CreateInstance(typeof(RawArrayCodecOf<>).MakeGenericType(element))!;
    }
}

internal sealed class RawArrayCodecOf<TElement> : RawArrayCodec<TElement[]>
    where TElement : unmanaged
{
    public override void Write(IBufferWriter<byte> writer, TElement[] value)
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(value.AsSpan());
        while (!bytes.IsEmpty)
        {
            Span<byte> destination = writer.GetSpan(Math.Min(bytes.Length, 1 << 20));
            int count = Math.Min(destination.Length, bytes.Length);
            bytes[..count].CopyTo(destination);
            writer.Advance(count);
            bytes = bytes[count..];
        }
    }

    public override TElement[] Read(ReadOnlySequence<byte> data) => FromBytes(data);

    /// <summary>A new array holding <paramref name="data"/>, which must be a whole number of elements.</summary>
    public static TElement[] FromBytes(ReadOnlySequence<byte> data)
    {
        int size = Unsafe.SizeOf<TElement>();
        if (data.Length % size != 0)
        {
            throw new InvalidDataException($"{data.Length} bytes are not a whole number of {typeof(TElement).Name} values.");
        }

        var array = GC.AllocateUninitializedArray<TElement>((int)(data.Length / size));
        data.CopyTo(MemoryMarshal.AsBytes(array.AsSpan()));
        return array;
    }
}
