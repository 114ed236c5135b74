using System.Buffers;

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
/// <param name="AssemblyName">The method's assembly, full name.</param>
/// <param name="AssemblyLocation">Where the host loaded it from, for a worker that cannot find it by name.</param>
/// <param name="ModuleVersionId">The module's MVID: changes with every build.</param>
/// <param name="MetadataToken">The method's token in its module.</param>
/// <param name="DeclaringType">Assembly-qualified name of the declaring type, generic arguments included.</param>
/// <param name="MethodName">The method's name, checked against what the token resolves to.</param>
/// <param name="GenericArguments">Assembly-qualified names of a generic method's type arguments.</param>
/// <param name="DelegateType">Assembly-qualified name of the delegate type the host called it through.</param>
/// <param name="TargetKind">How to get the target object.</param>
/// <param name="TargetType">Assembly-qualified name of the target's runtime type, for <see cref="TargetKind.Serialized"/>.</param>
/// <param name="Target">The serialized target, for <see cref="TargetKind.Serialized"/>: a tree of <see cref="TargetNode"/>s.</param>
/// <param name="DisplayName">The method as a person would write it, for error messages.</param>
internal sealed record FunctionDescriptor(
    string AssemblyName,
    string? AssemblyLocation,
    Guid ModuleVersionId,
    int MetadataToken,
    string DeclaringType,
    string MethodName,
    IReadOnlyList<string> GenericArguments,
    string DelegateType,
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
        string declaringType = reader.ReadRequiredString();
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

        string delegateType = reader.ReadRequiredString();
        var kind = (TargetKind)reader.ReadByte();
        string? targetType = reader.ReadString();
        byte[] target = reader.ReadBytes(reader.ReadInt32()).ToArray();
        string display = reader.ReadRequiredString();
        return new FunctionDescriptor(assembly, location, mvid, token, declaringType, method, arguments, delegateType, kind, targetType, target, display);
    }
}
