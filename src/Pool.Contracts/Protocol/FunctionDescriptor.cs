using System.Buffers;
using System.Reflection;

namespace Pool.Contracts;

/// <summary>What a worker needs to find a delegate's target object.</summary>
internal enum TargetKind : byte
{
    /// <summary>A static method: no target.</summary>
    None = 0,

    /// <summary>A lambda that captures nothing: the compiler's singleton (<c>&lt;&gt;9</c> on <c>&lt;&gt;c</c>).</summary>
    Singleton = 1,

    /// <summary>A closure or an object: rebuilt in the worker from <see cref="FunctionDescriptor.Target"/>
    /// (see <see cref="TargetNode"/>), once per call. Its function id is used by that call only.</summary>
    Serialized = 2,
}

/// <summary>
/// A function reference: which method, of which build, called through which delegate type. Code never
/// travels; the worker finds the same method in the same assembly. <see cref="ModuleVersionId"/> makes a
/// worker that loaded a different build refuse the reference instead of calling the wrong code.
/// </summary>
/// <remarks>
/// The common function (a static method, a lambda or a closure of a non-generic class, called through the
/// <c>Func</c> or <c>Action</c> of its own signature) is described without a type name, so that a worker binds
/// it without parsing one: the first type-name parse in a process costs it about 10 ms of start-up.
/// </remarks>
/// <param name="AssemblyName">The method's assembly, simple name (the build is checked by <paramref name="ModuleVersionId"/>).</param>
/// <param name="AssemblyLocation">Where the host loaded it from, for a worker that cannot find it by name.</param>
/// <param name="ModuleVersionId">The module's MVID: changes with every build.</param>
/// <param name="MetadataToken">The method's token in its module.</param>
/// <param name="DeclaringType">Assembly-qualified name of the declaring type, generic arguments included; null when
/// it is not generic and the method is in the assembly's manifest module, where the token finds it.</param>
/// <param name="MethodName">The method's name, checked against what the token resolves to.</param>
/// <param name="GenericArguments">Assembly-qualified names of a generic method's type arguments.</param>
/// <param name="DelegateType">Assembly-qualified name of the delegate type the host called it through; null when it
/// is <see cref="SignatureDelegate.Of"/> the method.</param>
/// <param name="TargetKind">How to get the target object.</param>
/// <param name="TargetType">Assembly-qualified name of the target's runtime type, for <see cref="TargetKind.Serialized"/>;
/// null when it is the declaring type.</param>
/// <param name="Target">The serialized target, for <see cref="TargetKind.Serialized"/>: a tree of <see cref="TargetNode"/>s.</param>
/// <param name="DisplayName">The method as a person would write it, for error messages.</param>
internal sealed record FunctionDescriptor(
    string AssemblyName,
    string? AssemblyLocation,
    Guid ModuleVersionId,
    int MetadataToken,
    string? DeclaringType,
    string MethodName,
    IReadOnlyList<string> GenericArguments,
    string? DelegateType,
    TargetKind TargetKind,
    string? TargetType,
    byte[] Target,
    string DisplayName)
{
    public void Write(FrameWriter writer)
    {
        writer.WriteString(AssemblyName);
        writer.WriteString(AssemblyLocation);
        writer.WriteGuid(ModuleVersionId);
        writer.WriteInt32(MetadataToken);
        writer.WriteString(DeclaringType);
        writer.WriteString(MethodName);
        writer.WriteInt32(GenericArguments.Count);
        foreach (string argument in GenericArguments)
        {
            writer.WriteString(argument);
        }

        writer.WriteString(DelegateType);
        writer.WriteByte((byte)TargetKind);
        writer.WriteString(TargetType);
        writer.WriteInt32(Target.Length);
        writer.WriteBytes(Target);
        writer.WriteString(DisplayName);
    }

    public static FunctionDescriptor Read(ref SequenceReader<byte> reader)
    {
        string assembly = reader.ReadRequiredString();
        string? location = reader.ReadString();
        Guid mvid = reader.ReadGuid();
        int token = reader.ReadInt32();
        string? declaringType = reader.ReadString();
        string method = reader.ReadRequiredString();
        int count = reader.ReadInt32();
        if (count < 0 || count > 64)
        {
            throw new ProtocolException($"A function reference claims {count} generic arguments.");
        }

        var arguments = new string[count];
        for (int i = 0; i < count; i++)
        {
            arguments[i] = reader.ReadRequiredString();
        }

        string? delegateType = reader.ReadString();
        var kind = (TargetKind)reader.ReadByte();
        string? targetType = reader.ReadString();
        byte[] target = reader.ReadBytes(reader.ReadInt32()).ToArray();
        string display = reader.ReadRequiredString();
        return new FunctionDescriptor(assembly, location, mvid, token, declaringType, method, arguments, delegateType, kind, targetType, target, display);
    }
}

/// <summary>The <c>Func</c> or <c>Action</c> type of a method's own signature, which both sides build the same way.</summary>
internal static class SignatureDelegate
{
    private static readonly Type[] Funcs =
    [
        typeof(Func<>), typeof(Func<,>), typeof(Func<,,>), typeof(Func<,,,>), typeof(Func<,,,,>), typeof(Func<,,,,,>),
        typeof(Func<,,,,,,>), typeof(Func<,,,,,,,>), typeof(Func<,,,,,,,,>),
    ];

    private static readonly Type[] Actions =
    [
        typeof(Action), typeof(Action<>), typeof(Action<,>), typeof(Action<,,>), typeof(Action<,,,>), typeof(Action<,,,,>),
        typeof(Action<,,,,,>), typeof(Action<,,,,,,>), typeof(Action<,,,,,,,>),
    ];

    /// <summary><c>Func&lt;P1, ..., R&gt;</c> or <c>Action&lt;P1, ...&gt;</c> of <paramref name="method"/>'s parameters and
    /// return type; null beyond 8 parameters, or for a parameter or return type that cannot be a type argument.</summary>
    public static Type? Of(MethodInfo method)
    {
        ParameterInfo[] parameters = method.GetParameters();
        bool isAction = method.ReturnType == typeof(void);
        if (parameters.Length >= Funcs.Length)
        {
            return null;
        }

        var arguments = new Type[parameters.Length + (isAction ? 0 : 1)];
        for (int i = 0; i < parameters.Length; i++)
        {
            arguments[i] = parameters[i].ParameterType;
        }

        if (!isAction)
        {
            arguments[^1] = method.ReturnType;
        }

        foreach (Type argument in arguments)
        {
            if (argument.IsByRef || argument.IsPointer || argument.IsFunctionPointer || argument.IsByRefLike || argument.ContainsGenericParameters)
            {
                return null;
            }
        }

        if (arguments.Length == 0)
        {
            return typeof(Action);
        }

        return (isAction ? Actions : Funcs)[parameters.Length].MakeGenericType(arguments);
    }
}
