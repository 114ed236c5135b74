using System.Buffers;

namespace Pool;

/// <summary>
/// Turns the arguments and results of tasks into bytes and back. The pool calls it for every value that
/// crosses to a worker; the worker creates its own instance of the same type, so a custom serializer needs
/// a public parameterless constructor. The default, <see cref="MessagePackPoolSerializer"/>, writes primitives,
/// strings and arrays of primitives as raw bytes and everything else as MessagePack; <see cref="JsonPoolSerializer"/>
/// writes everything else as JSON.
/// </summary>
/// <remarks>Python's pools use pickle for the same job; there is no equivalent of <c>copyreg</c> here:
/// a type that does not round-trip through the serializer cannot be an argument or a result.</remarks>
public abstract class PoolSerializer
{
    /// <summary>The serializer a pool uses when its options name none: a <see cref="MessagePackPoolSerializer"/>.</summary>
    public static PoolSerializer Default { get; } = new MessagePackPoolSerializer();

    /// <summary>Writes <paramref name="value"/>, which is never null, to <paramref name="writer"/>.</summary>
    public abstract void Serialize<T>(IBufferWriter<byte> writer, T value);

    /// <summary>Reads back a value that <see cref="Serialize{T}"/> wrote.</summary>
    public abstract T Deserialize<T>(ReadOnlySequence<byte> data);

    /// <summary>Whether this serializer writes raw values, strings and arrays of raw values as <see cref="Contracts.RawValues"/>
    /// does, so that the pool may write them itself (a chunk of ints as one block) without calling it.</summary>
    internal virtual bool WritesRawValues => false;
}
