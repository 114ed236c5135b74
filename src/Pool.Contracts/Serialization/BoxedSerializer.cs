using System.Buffers;
using System.Collections.Concurrent;

namespace Pool.Contracts;

/// <summary>
/// Calls a <see cref="PoolSerializer"/> for a value whose type is known only at run time: the captured
/// variables and fields of a shipped function's target. Used once per call on the host and once per bind
/// in a worker, never per task.
/// </summary>
internal abstract class BoxedSerializer
{
    private static readonly ConcurrentDictionary<Type, BoxedSerializer> Cache = new();

    /// <summary>The serializer of values of type <paramref name="type"/> (not a pointer, not a by-ref-like type).</summary>
    public static BoxedSerializer For(Type type) =>
        Cache.GetOrAdd(type, static t => (BoxedSerializer)Activator.CreateInstance(typeof(BoxedSerializer<>).MakeGenericType(t))!);

    /// <summary>Writes <paramref name="value"/>, which is not null, as the type this instance was made for.</summary>
    public abstract void Serialize(PoolSerializer serializer, IBufferWriter<byte> writer, object value);

    public abstract object? Deserialize(PoolSerializer serializer, ReadOnlySequence<byte> data);
}

internal sealed class BoxedSerializer<T> : BoxedSerializer
{
    public override void Serialize(PoolSerializer serializer, IBufferWriter<byte> writer, object value) => serializer.Serialize(writer, (T)value);

    public override object? Deserialize(PoolSerializer serializer, ReadOnlySequence<byte> data) => serializer.Deserialize<T>(data);
}
