using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace Pool.Contracts;

/// <summary>
/// The resolver of <see cref="MessagePackPoolSerializer.CreateDefaultOptions"/>: <see cref="ObjectMemberFormatter"/> for
/// members declared <see cref="object"/>; <see cref="DateTime"/> (with its kind), <see cref="decimal"/> and <see cref="Guid"/>
/// in binary; everything else contractless, private members included. Every formatter of a reference type counts how
/// deep it is writing (<see cref="DepthGuardFormatter{T}"/>): MessagePack itself would recurse on a cycle until the
/// stack overflows, which ends the process.
/// </summary>
internal sealed class PoolResolver : IFormatterResolver
{
    public static readonly PoolResolver Instance = new();

    private static readonly IFormatterResolver Inner = CompositeResolver.Create(
        [ObjectMemberFormatter.Instance],
        [NativeDateTimeResolver.Instance, NativeDecimalResolver.Instance, NativeGuidResolver.Instance, ContractlessStandardResolverAllowPrivate.Instance]);

    private PoolResolver()
    {
    }

    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = Guarded(Inner.GetFormatter<T>());

        /// <summary>Only a reference type can lead back to an object being written (a string or byte[] cannot).</summary>
        private static IMessagePackFormatter<T>? Guarded(IMessagePackFormatter<T>? inner) =>
            inner is not null && !typeof(T).IsValueType && typeof(T) != typeof(string) && typeof(T) != typeof(byte[])
                ? new DepthGuardFormatter<T>(inner)
                : inner;
    }
}

/// <summary>
/// <see cref="MessagePackSecurity.UntrustedData"/>, except that a dictionary or set whose key type has no collision-resistant
/// comparer (a tuple, a record: MessagePack has them only for primitives, strings and a few more) gets the key type's own
/// comparer instead of failing to read: keys of such types are the application's data.
/// </summary>
internal sealed class PoolSecurity : MessagePackSecurity
{
    public static readonly PoolSecurity Instance = new(UntrustedData);

    private PoolSecurity(MessagePackSecurity copyFrom)
        : base(copyFrom)
    {
    }

    protected override MessagePackSecurity Clone() => new PoolSecurity(this);

    protected override IEqualityComparer<T> GetHashCollisionResistantEqualityComparer<T>() => Comparers<T>.Get(this);

    private IEqualityComparer<T> Resistant<T>() => base.GetHashCollisionResistantEqualityComparer<T>();

    private static class Comparers<T>
    {
        private static IEqualityComparer<T>? s_comparer;

        public static IEqualityComparer<T> Get(PoolSecurity security)
        {
            if (s_comparer is { } known)
            {
                return known;
            }

            IEqualityComparer<T> comparer;
            try
            {
                comparer = security.Resistant<T>();
            }
            catch (TypeAccessException)
            {
                // MessagePack has no collision-resistant comparer for this key type: its own equality, as the sender's dictionary had.
                comparer = EqualityComparer<T>.Default;
            }

            return s_comparer = comparer;
        }
    }
}

/// <summary>How many objects deep the current thread is writing.</summary>
internal static class WriteDepth
{
    /// <summary>Deeper than this, an object is taken for one that refers back to itself; as deep as MessagePack reads untrusted data.</summary>
    public static readonly int Max = MessagePackSecurity.UntrustedData.MaximumObjectGraphDepth;

    [ThreadStatic]
    public static int Current;
}

/// <summary>Refuses to write deeper than <see cref="WriteDepth.Max"/> objects: a cycle fails with a message, not a stack overflow.</summary>
internal sealed class DepthGuardFormatter<T>(IMessagePackFormatter<T> inner) : IMessagePackFormatter<T>
{
    public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options)
    {
        if (++WriteDepth.Current > WriteDepth.Max)
        {
            WriteDepth.Current = 0;
            throw new MessagePackSerializationException(
                $"A {TypeFacts.Describe(typeof(T))} is nested more than {WriteDepth.Max} objects deep: an object refers back to one that contains it, " +
                "which MessagePack cannot write (it writes trees). Send a tree, or mark the field that points back [NonSerialized] or [IgnoreMember].");
        }

        try
        {
            inner.Serialize(ref writer, value, options);
        }
        finally
        {
            WriteDepth.Current = Math.Max(0, WriteDepth.Current - 1);
        }
    }

    public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) => inner.Deserialize(ref reader, options);
}

/// <summary>
/// A member declared <see cref="object"/>: a value of a framework scalar type (a number of any size, <see cref="char"/>,
/// <see cref="decimal"/>, dates and times, <see cref="Guid"/>, <c>BigInteger</c>, <c>Complex</c>) travels as an extension
/// whose code names one of those types and whose bytes are the value's, so that it comes back as itself; null, a
/// <see cref="bool"/> and a string as MessagePack's own; any other value as its runtime type writes it, read back in
/// MessagePack's own shapes (<c>object[]</c>, <c>Dictionary&lt;object, object&gt;</c>). No type is ever named by the bytes.
/// </summary>
internal sealed class ObjectMemberFormatter : IMessagePackFormatter<object?>
{
    public static readonly ObjectMemberFormatter Instance = new();

    /// <summary>The extension codes 80.. name these types, in this order: the wire's table, append only.</summary>
    private static readonly Scalar[] Scalars =
    [
        Scalar.Of<byte>(), Scalar.Of<sbyte>(), Scalar.Of<short>(), Scalar.Of<ushort>(), Scalar.Of<int>(), Scalar.Of<uint>(),
        Scalar.Of<long>(), Scalar.Of<ulong>(), Scalar.Of<float>(), Scalar.Of<double>(), Scalar.Of<char>(), Scalar.Of<decimal>(),
        Scalar.Of<Half>(), Scalar.Of<Int128>(), Scalar.Of<UInt128>(), Scalar.Of<DateTime>(), Scalar.Of<DateTimeOffset>(),
        Scalar.Of<TimeSpan>(), Scalar.Of<DateOnly>(), Scalar.Of<TimeOnly>(), Scalar.Of<Guid>(), Scalar.Of<Complex>(), new BigIntegerScalar(),
    ];

    private const sbyte FirstCode = 80;

    private static readonly Dictionary<Type, sbyte> Codes = CodesOf(Scalars);

    /// <summary>Values that mean something only in this process: refused, whatever a member declared object holds.</summary>
    private static readonly Type[] ProcessLocalTypes =
    [
        typeof(System.Reflection.MemberInfo), typeof(System.Reflection.Assembly), typeof(System.Reflection.Module),
        typeof(System.Reflection.ParameterInfo), typeof(Delegate), typeof(Stream), typeof(Task), typeof(Thread), typeof(WaitHandle),
        typeof(SafeHandle), typeof(CancellationTokenSource),
    ];

    public void Serialize(ref MessagePackWriter writer, object? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
        }
        else if (Codes.TryGetValue(value.GetType(), out sbyte code))
        {
            Scalars[code - FirstCode].Write(ref writer, code, value);
        }
        else if (value.GetType() == typeof(object))
        {
            writer.WriteMapHeader(0);
        }
        else
        {
            if (ProcessLocal(value.GetType()) is { } local)
            {
                throw new MessagePackSerializationException(
                    $"A {TypeFacts.Describe(value.GetType())} is a {local.Name}, which means something only in this process. " +
                    "Send what a worker needs to make its own (a type's or a file's name, the data itself).");
            }

            // Written as its runtime type (through the options' resolver, so nested members are guarded too).
            DynamicObjectTypeFallbackFormatter.Instance.Serialize(ref writer, value, options);
        }
    }

    public object? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Extension:
                MessagePackReader peek = reader.CreatePeekReader();
                ExtensionHeader header = peek.ReadExtensionFormatHeader();
                int index = header.TypeCode - FirstCode;
                if (index < 0 || index >= Scalars.Length)
                {
                    break;
                }

                ExtensionResult extension = reader.ReadExtensionFormat();
                return Scalars[index].Read(extension.Data);
            case MessagePackType.Array:
                return ReadArray(ref reader, options);
            case MessagePackType.Map:
                return ReadMap(ref reader, options);
        }

        return PrimitiveObjectFormatter.Instance.Deserialize(ref reader, options);
    }

    /// <summary>The process-bound base type of <paramref name="type"/> (reflection, code, streams, threads, handles), or null.</summary>
    private static Type? ProcessLocal(Type type)
    {
        foreach (Type local in ProcessLocalTypes)
        {
            if (local.IsAssignableFrom(type))
            {
                return local;
            }
        }

        return null;
    }

    private object?[] ReadArray(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        int count = reader.ReadArrayHeader();
        options.Security.DepthStep(ref reader);
        try
        {
            var items = new object?[count];
            for (int i = 0; i < count; i++)
            {
                items[i] = Deserialize(ref reader, options);
            }

            return items;
        }
        finally
        {
            reader.Depth--;
        }
    }

    private Dictionary<object, object?> ReadMap(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        int count = reader.ReadMapHeader();
        options.Security.DepthStep(ref reader);
        try
        {
            var map = new Dictionary<object, object?>(count, options.Security.GetEqualityComparer<object>());
            for (int i = 0; i < count; i++)
            {
                object key = Deserialize(ref reader, options) ?? throw new MessagePackSerializationException("A map in a member declared object has a null key.");
                map[key] = Deserialize(ref reader, options);
            }

            return map;
        }
        finally
        {
            reader.Depth--;
        }
    }

    private static Dictionary<Type, sbyte> CodesOf(Scalar[] scalars)
    {
        var codes = new Dictionary<Type, sbyte>(scalars.Length);
        for (int i = 0; i < scalars.Length; i++)
        {
            codes.Add(scalars[i].Type, (sbyte)(FirstCode + i));
        }

        return codes;
    }

    private abstract class Scalar(Type type)
    {
        public Type Type => type;

        public static Fixed<T> Of<T>()
            where T : unmanaged => new Fixed<T>();

        public abstract void Write(ref MessagePackWriter writer, sbyte code, object value);

        public abstract object Read(ReadOnlySequence<byte> data);
    }

    /// <summary>A value whose bytes are the value on this machine (as <see cref="RawTypes"/>).</summary>
    private sealed class Fixed<T>() : Scalar(typeof(T))
        where T : unmanaged
    {
        public override void Write(ref MessagePackWriter writer, sbyte code, object value)
        {
            T unboxed = (T)value;
            writer.WriteExtensionFormat(new ExtensionResult(code, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref unboxed)).ToArray()));
        }

        public override object Read(ReadOnlySequence<byte> data)
        {
            Span<byte> bytes = stackalloc byte[Unsafe.SizeOf<T>()];
            if (data.Length != bytes.Length)
            {
                throw new MessagePackSerializationException($"A {typeof(T).Name} in a member declared object has {data.Length} bytes, not {bytes.Length}.");
            }

            data.CopyTo(bytes);
            return Unsafe.ReadUnaligned<T>(ref bytes[0]);
        }
    }

    private sealed class BigIntegerScalar() : Scalar(typeof(BigInteger))
    {
        public override void Write(ref MessagePackWriter writer, sbyte code, object value) =>
            writer.WriteExtensionFormat(new ExtensionResult(code, ((BigInteger)value).ToByteArray()));

        public override object Read(ReadOnlySequence<byte> data) => new BigInteger(data.ToArray());
    }
}

/// <summary>What MessagePack threw, said as what to do: the innermost message, and the fix for the two failures users meet.</summary>
internal static class MessagePackFailure
{
    public static Exception Explain(Type type, MessagePackSerializationException e, string verb)
    {
        Exception inner = e;
        while (inner.InnerException is { } next)
        {
            inner = next;
        }

        string what = TypeFacts.Describe(type);
        if (inner.Message.Contains("can't find matched constructor", StringComparison.Ordinal))
        {
            return new NotSupportedException(
                $"MessagePack cannot {verb} a {what}: {inner.Message}. It rebuilds an object through a constructor whose parameters are named as " +
                "its properties or fields (as a record's primary constructor is), or a parameterless one: give the type one, " +
                "or set ProcessPoolOptions.Serializer to a JsonPoolSerializer.",
                e);
        }

        if (inner is FormatterNotRegisteredException)
        {
            return new NotSupportedException(
                $"MessagePack cannot {verb} a {what}: {inner.Message}. A member declared as an interface or an abstract class needs its " +
                "implementations listed on it with MessagePack's [Union(0, typeof(Implementation))], so that the bytes say which one to build; " +
                "or declare the member as the concrete type.",
                e);
        }

        return inner == e ? e : new MessagePackSerializationException($"MessagePack cannot {verb} a {what}: {inner.Message}", e);
    }
}
