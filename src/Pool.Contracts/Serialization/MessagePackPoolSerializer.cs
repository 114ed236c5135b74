using System.Buffers;
using System.Runtime.CompilerServices;
using MessagePack;
using Pool.Contracts;

namespace Pool;

/// <summary>
/// The default serializer. Numbers, <see cref="bool"/>, <see cref="char"/>, enums, <see cref="Guid"/>, dates,
/// <see cref="decimal"/> and arrays of them travel as their raw bytes, strings as UTF-8; records, classes, structs,
/// lists, dictionaries, tuples and the application's own types travel as MessagePack, without attributes: every
/// property and field is written by name, private ones included (MessagePack's contractless resolver that allows
/// private members), and the object is rebuilt through a constructor whose parameters are named as its members
/// (a record's primary constructor) or a parameterless one. NaN and infinities, <see cref="DateTime.Kind"/>,
/// <see cref="decimal"/> scale, <c>BigInteger</c> and <c>Complex</c> survive.
/// </summary>
/// <remarks>
/// <para>What travels and what does not (the pool checks the first value of each call and refuses at the call one that
/// would not arrive as it is):</para>
/// <list type="bullet">
/// <item>A member marked <see cref="NonSerializedAttribute"/> or MessagePack's <c>[IgnoreMember]</c> stays home: the worker sees its default.</item>
/// <item>A type with no constructor MessagePack can call (parameters that match no member by name) is refused: give it one,
/// or use <see cref="JsonPoolSerializer"/>.</item>
/// <item>A member declared as an interface or an abstract class needs MessagePack's <c>[Union(0, typeof(Impl))]</c> on it,
/// listing the implementations; a derived object in a member declared as its concrete base class arrives as the base
/// class, and is refused.</item>
/// <item>A member declared <see cref="object"/> brings back numbers, <see cref="bool"/>, <see cref="char"/>, strings,
/// <see cref="decimal"/>, dates and times, <see cref="Guid"/>, <c>BigInteger</c> and <c>Complex</c> as themselves; any
/// other value arrives in MessagePack's own shapes: an <c>object[]</c> for a list, array or tuple, a
/// <c>Dictionary&lt;object, object&gt;</c> for a dictionary or an object's members by name. A type named by the bytes is
/// never created: only the types the function's signature and its members declare.</item>
/// <item>An object that refers back to itself is refused (MessagePack writes trees).</item>
/// </list>
/// <para>Reading uses <see cref="MessagePackSecurity.UntrustedData"/> (bounded depth, collision-resistant hashing of
/// dictionary keys where MessagePack has it: primitives and strings; a tuple or record key uses its own equality); MessagePack's typeless formatters, which name types in the bytes, are not used.</para>
/// <para>To use your own <see cref="MessagePackSerializerOptions"/> (a resolver for your types), derive a class with a
/// public parameterless constructor that passes them to the protected constructor, starting from
/// <see cref="CreateDefaultOptions"/>, and set it as <c>ProcessPoolOptions.Serializer</c>: the workers create the same
/// class. Python's pools use pickle for this job, which can rebuild any class by its name; this serializer never does.</para>
/// </remarks>
public class MessagePackPoolSerializer : PoolSerializer
{
    private MessagePackSerializerOptions? _options;

    /// <summary>Creates the serializer with <see cref="CreateDefaultOptions"/>, made when a value first needs them.</summary>
    public MessagePackPoolSerializer()
    {
    }

    /// <summary>Creates the serializer with the given options: for a derived class whose parameterless constructor passes them.</summary>
    protected MessagePackPoolSerializer(MessagePackSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>
    /// The options used for values that are not raw. The defaults are made on first use: MessagePack's resolvers take
    /// 30-90 ms to set up in a fresh process, which a worker whose tasks take and return only raw values (numbers,
    /// strings, arrays of numbers) never pays, and the others pay at their first such value rather than at start-up.
    /// </summary>
    public MessagePackSerializerOptions Options => _options ?? CreateOptionsOnce();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private MessagePackSerializerOptions CreateOptionsOnce()
    {
        Interlocked.CompareExchange(ref _options, CreateDefaultOptions(), null);
        return _options;
    }

    /// <summary>
    /// The defaults: contractless with private members, <see cref="DateTime"/>, <see cref="decimal"/> and <see cref="Guid"/>
    /// as their binary forms (a <see cref="DateTime"/> keeps its <see cref="DateTime.Kind"/>), members declared
    /// <see cref="object"/> keeping their framework scalar types, objects that refer back to themselves refused, and
    /// <see cref="MessagePackSecurity.UntrustedData"/>. Start your own options from these.
    /// </summary>
    public static MessagePackSerializerOptions CreateDefaultOptions() =>
        MessagePackSerializerOptions.Standard.WithResolver(PoolResolver.Instance).WithSecurity(PoolSecurity.Instance);

    /// <inheritdoc />
    public sealed override void Serialize<T>(IBufferWriter<byte> writer, T value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (RawValues.TryWrite(writer, value))
        {
            return;
        }

        Pack(writer, value);
    }

    /// <inheritdoc />
    public sealed override T Deserialize<T>(ReadOnlySequence<byte> data)
    {
        if (RawValues.TryRead(data, out T value))
        {
            return value;
        }

        return Unpack<T>(data);
    }

    // Apart from the raw paths, so that compiling them for a raw type does not load MessagePack.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Pack<T>(IBufferWriter<byte> writer, T value)
    {
        try
        {
            MessagePackSerializer.Serialize(writer, value, Options);
        }
        catch (MessagePackSerializationException e)
        {
            throw MessagePackFailure.Explain(typeof(T), e, "write");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private T Unpack<T>(ReadOnlySequence<byte> data)
    {
        try
        {
            return MessagePackSerializer.Deserialize<T>(data, Options);
        }
        catch (MessagePackSerializationException e)
        {
            throw MessagePackFailure.Explain(typeof(T), e, "read");
        }
    }

    /// <inheritdoc />
    internal override bool WritesRawValues => true;
}
