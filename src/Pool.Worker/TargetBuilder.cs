using System.Buffers;
using System.Reflection;
using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// Rebuilds a function's target object from its <see cref="TargetNode"/>s, once per bind: closures and the
/// object a method runs on are made without running a constructor (as pickle does) and get their fields
/// set; values come from the serializer. The result is this worker's own copy for the call.
/// </summary>
internal sealed class TargetBuilder(PoolSerializer serializer, Func<string, Type> resolveType, string function)
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <exception cref="FunctionBindingException">A type or field is missing, or a value does not deserialize.</exception>
    public object Build(Type declared, byte[] target)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(target));
        return Read(ref reader, declared, "the target object")
            ?? throw new FunctionBindingException($"The target of {function} arrived as null.");
    }

    private object? Read(ref SequenceReader<byte> reader, Type declared, string what)
    {
        var node = (TargetNode)reader.ReadByte();
        switch (node)
        {
            case TargetNode.Null:
                return null;

            case TargetNode.Value:
            {
                Type type = reader.ReadString() is { } name ? resolveType(name) : declared;
                ReadOnlySequence<byte> bytes = reader.ReadBytes(reader.ReadInt32());
                try
                {
                    return BoxedSerializer.For(type).Deserialize(serializer, bytes);
                }
                catch (Exception e)
                {
                    // The host read the same bytes back at the call, so this is a worker-only failure (a type
                    // that deserializes differently here); report it as this call's binding failure.
                    throw new FunctionBindingException($"The worker could not deserialize {what} (a {type}) for {function}: {e.Message}");
                }
            }

            case TargetNode.Fields:
            {
                Type type = reader.ReadString() is { } name ? resolveType(name) : declared;
                object instance = RuntimeHelpers.GetUninitializedObject(type);
                int count = reader.ReadInt32();
                for (int i = 0; i < count; i++)
                {
                    int depth = reader.ReadByte();
                    string fieldName = reader.ReadRequiredString();
                    FieldInfo field = FindField(type, depth, fieldName);
                    field.SetValue(instance, Read(ref reader, field.FieldType, $"field {fieldName} of {type.Name}"));
                }

                return instance;
            }

            default:
                throw new ProtocolException($"A function target holds a node of kind {(byte)node}.");
        }
    }

    private FieldInfo FindField(Type type, int depth, string name)
    {
        Type? owner = type;
        for (int i = 0; i < depth && owner is not null; i++)
        {
            owner = owner.BaseType;
        }

        return owner?.GetField(name, InstanceFields)
            ?? throw new FunctionBindingException(
                $"The worker's {type} has no field {name} needed by {function}: the host and its workers run different builds of {type.Assembly.GetName().Name}.");
    }
}
