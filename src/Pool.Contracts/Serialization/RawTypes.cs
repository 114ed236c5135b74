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
        if (writer is FrameWriter frames)
        {
            // A large array goes to the pipe from where it is, with no copy, when the frames allow it.
            frames.WriteLarge(value);
            return;
        }

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

    public override TElement[] Read(ReadOnlySequence<byte> data)
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
