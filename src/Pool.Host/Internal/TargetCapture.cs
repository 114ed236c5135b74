using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Writes a delegate's target object as <see cref="TargetNode"/>s, once per call, and refuses at the call
/// what cannot ship, naming it. The compiler's closure objects ship the fields the function uses (see
/// <see cref="ClosureScan"/>): the captured variables. The object whose method is shipped (the target of
/// <c>pool.Map(model.Score, xs)</c>, or <c>this</c> in a lambda) is copied field by field, every instance
/// field, private and inherited ones included, except those marked <see cref="NonSerializedAttribute"/>:
/// the method reads its fields, not its public properties. Every value they hold (a captured variable, a
/// field) travels through the pool's serializer as an argument does and is read back here at once; an
/// object of the application's own types that the serializer cannot bring back with the same fields is
/// copied field by field instead. A value that cannot travel either way fails the call, not a worker.
/// </summary>
internal sealed class TargetCapture
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>How deep objects copied field by field may nest before their values must go through the serializer.</summary>
    private const int MaxObjectDepth = 8;


    private readonly PoolSerializer _serializer;
    private readonly string _function;
    private readonly IReadOnlySet<(Module Module, int Token)>? _used;
    private readonly FrameWriter _writer = new(4096);
    private readonly HashSet<object> _path = new(ReferenceEqualityComparer.Instance);

    private TargetCapture(PoolSerializer serializer, string function, IReadOnlySet<(Module Module, int Token)>? used)
    {
        _serializer = serializer;
        _function = function;
        _used = used;
    }

    /// <summary>The target's bytes for <see cref="FunctionDescriptor.Target"/>.</summary>
    /// <param name="target">The delegate's target.</param>
    /// <param name="method">The delegate's method.</param>
    /// <param name="serializer">The pool's serializer.</param>
    /// <param name="function">How to name the function in errors: "fn (lambda in Program.Main)".</param>
    /// <exception cref="ArgumentException">Something the function needs cannot go to a worker; the message names it.</exception>
    public static byte[] Capture(object target, MethodInfo method, PoolSerializer serializer, string function)
    {
        Type type = target.GetType();
        var capture = new TargetCapture(serializer, function, TypeFacts.IsClosure(type) ? ClosureScan.FieldsUsedBy(method) : null);
        try
        {
            if (TypeFacts.IsClosure(type))
            {
                capture.WriteClosure(target, type, typeName: null);
            }
            else if (TypeFacts.IsFrameworkType(type))
            {
                capture.WriteValue(target, type, "the object the method is called on");
            }
            else
            {
                // A lambda or local function that captures only `this` is compiled as a method of this's class.
                capture.WriteObject(target, type, typeName: null, method.Name.StartsWith('<') ? "`this`" : "the object the method is called on");
            }

            return capture._writer.WrittenMemory.ToArray();
        }
        finally
        {
            capture._writer.Dispose();
        }
    }

    /// <summary>A closure: the fields the function uses; nested scopes and <c>this</c> recursively.</summary>
    private void WriteClosure(object closure, Type type, string? typeName)
    {
        FieldInfo[] fields = type.GetFields(InstanceFields);
        _writer.WriteByte((byte)TargetNode.Fields);
        _writer.WriteString(typeName);
        int countPosition = _writer.ReserveInt32();
        int count = 0;
        foreach (FieldInfo field in fields)
        {
            if (!ClosureScan.Uses(_used, field))
            {
                continue;
            }

            count++;
            _writer.WriteByte(0);
            _writer.WriteString(field.Name);
            object? value = field.GetValue(closure);
            if (value is null)
            {
                _writer.WriteByte((byte)TargetNode.Null);
            }
            else if (TypeFacts.IsClosure(value.GetType()))
            {
                WriteClosure(value, value.GetType(), value.GetType() == field.FieldType ? null : value.GetType().AssemblyQualifiedName);
            }
            else if (field.Name == "<>4__this" && !TypeFacts.IsFrameworkType(value.GetType()))
            {
                WriteObject(value, value.GetType(), value.GetType() == field.FieldType ? null : value.GetType().AssemblyQualifiedName, "`this`");
            }
            else
            {
                WriteValue(value, field.FieldType, $"the captured variable `{field.Name}`");
            }
        }

        _writer.PatchInt32(countPosition, count);
    }

    /// <summary>An object of the user's own type, copied field by field: every instance field (not [NonSerialized] ones), each as a value.</summary>
    private void WriteObject(object target, Type type, string? typeName, string what)
    {
        CheckLoadable(type, $"{what} (a {TypeFacts.Describe(type)})");
        if (Unshippable.Check(type) is { } reason)
        {
            throw Refused(what, type, reason, string.Empty);
        }

        if (!_path.Add(target))
        {
            throw new ArgumentException(
                $"{_function} cannot be shipped to a worker: {what} refers back to an object that contains it. " +
                "Targets are copied as trees: mark the field that points back [NonSerialized], or capture only the values the function needs.");
        }

        (int Depth, FieldInfo Field)[] fields = TypeFacts.FieldsOf(type);
        _writer.WriteByte((byte)TargetNode.Fields);
        _writer.WriteString(typeName);
        _writer.WriteInt32(fields.Length);
        foreach ((int depth, FieldInfo field) in fields)
        {
            _writer.WriteByte((byte)depth);
            _writer.WriteString(field.Name);
            object? value = field.GetValue(target);
            if (value is null)
            {
                _writer.WriteByte((byte)TargetNode.Null);
                continue;
            }

            WriteValue(value, field.FieldType, $"{TypeFacts.MemberName(field)} of {what} (a {TypeFacts.Describe(type)})", canSkip: true);
        }

        _path.Remove(target);
    }

    /// <summary>
    /// A captured variable or a field: through the serializer, and read back at once. An object of the user's
    /// own type that the serializer cannot bring back with the same fields (a constructor it cannot call,
    /// state in private fields) is copied field by field instead, as the object of an instance method is.
    /// </summary>
    private void WriteValue(object value, Type declaredType, string what, bool canSkip = false)
    {
        Type runtimeType = value.GetType();
        string skip = canSkip ? " If the method does not need it in a worker, mark the field [NonSerialized] (the worker sees its default)." : string.Empty;
        // A pointer's box, or a runtime type the user never wrote (RuntimeType, a LINQ iterator): name the declared one.
        Type shown = runtimeType == typeof(Pointer) || (!runtimeType.IsVisible && declaredType.IsVisible && declaredType != typeof(object)) ? declaredType : runtimeType;
        if ((Unshippable.Check(shown) ?? Unshippable.Check(declaredType)) is { } reason)
        {
            throw Refused(what, shown, reason, skip);
        }

        CheckLoadable(runtimeType, $"{what} (a {TypeFacts.Describe(runtimeType)})");
        Type shipped = runtimeType == declaredType || !CanNameInWorker(runtimeType) ? declaredType : runtimeType;
        string? typeName = shipped == declaredType ? null : shipped.AssemblyQualifiedName;
        int node = _writer.Position;
        Exception? failure = TryWriteSerialized(value, shipped, typeName, out object? copy);
        Difference? difference = failure is null ? Fidelity.Find(value, copy, shipped, _serializer) : null;
        if ((failure is not null || difference is not null) && TypeFacts.IsOwnObject(runtimeType) && _path.Count < MaxObjectDepth)
        {
            _writer.Truncate(node);
            WriteObject(value, runtimeType, runtimeType == declaredType ? null : runtimeType.AssemblyQualifiedName, what);
            return;
        }

        if (failure is not null)
        {
            throw new ArgumentException(
                $"{_function} cannot be shipped to a worker: {what} (a {TypeFacts.Describe(runtimeType)}) does not survive {_serializer.GetType().Name}: {failure.Message} " +
                "Give the type public properties and a constructor the serializer can use, or set ProcessPoolOptions.Serializer to one that handles it." + skip,
                failure);
        }

        if (difference is not null)
        {
            throw new ArgumentException(
                $"{_function} cannot be shipped to a worker: {what} (a {TypeFacts.Describe(runtimeType)}) would not arrive as it is with {_serializer.GetType().Name}: {difference}. " +
                Fidelity.HowToKeep(difference, _serializer) + skip);
        }
    }

    /// <summary>Writes a <see cref="TargetNode.Value"/> and reads it back; returns what the serializer threw, if anything.</summary>
    private Exception? TryWriteSerialized(object value, Type shipped, string? typeName, out object? copy)
    {
        _writer.WriteByte((byte)TargetNode.Value);
        _writer.WriteString(typeName);
        int lengthPosition = _writer.ReserveInt32();
        int start = _writer.Position;
        BoxedSerializer serializer = BoxedSerializer.For(shipped);
        try
        {
            serializer.Serialize(_serializer, _writer, value);
            copy = serializer.Deserialize(_serializer, new ReadOnlySequence<byte>(_writer.WrittenMemory[start..]));
        }
        catch (Exception e)
        {
            // Whatever the serializer throws is reported (or worked around) here, at the call, not in a worker.
            copy = null;
            return e;
        }

        _writer.PatchInt32(lengthPosition, _writer.Position - start);
        return null;
    }

    private ArgumentException Refused(string what, Type type, UnshippableReason reason, string skip)
    {
        string holds = reason.Type == type ? string.Empty : $", which holds a {TypeFacts.Describe(reason.Type)}";
        return new ArgumentException($"{_function} cannot be shipped to a worker: {what} is a {TypeFacts.Describe(type)}{holds}, and {reason.Why}. {reason.Instead}{skip}");
    }

    private void CheckLoadable(Type type, string what)
    {
        Assembly assembly = type.Assembly;
        if (assembly.IsDynamic || assembly.IsCollectible)
        {
            throw new ArgumentException(
                $"{_function} cannot be shipped to a worker: {what} comes from the {(assembly.IsDynamic ? "dynamic" : "collectible")} assembly {assembly.GetName().Name}, " +
                "which a worker cannot load. Use types from assemblies the application references.");
        }
    }

    /// <summary>A worker can resolve the runtime type by name: not compiler-generated, not a framework internal (a LINQ iterator).</summary>
    private static bool CanNameInWorker(Type type) =>
        !type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && (type.IsVisible || !TypeFacts.IsFrameworkType(type));
}
