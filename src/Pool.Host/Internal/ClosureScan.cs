using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace Pool.Internal;

/// <summary>
/// Which fields of the compiler's closure objects a lambda or local function really uses. All the variables
/// captured in one scope live in one closure object, shared by every lambda of that scope, so a lambda that
/// reads an <c>int</c> may sit on an object that also holds a stream another lambda captured. Only the
/// fields found here are shipped (as Python closures hold only the cells a function references).
/// </summary>
/// <remarks>
/// The scan reads the method's IL for <c>ldfld</c>, <c>ldflda</c>, <c>stfld</c> and <c>ldtoken</c> (expression
/// trees) on compiler-generated types, and follows what the compiler generates around a lambda: lambdas and local functions it calls or
/// makes delegates of, and the state machine of an async or iterator body. When a body cannot be read the
/// scan gives up and every field is shipped.
/// </remarks>
internal static class ClosureScan
{
    private const int MaxMethods = 256;

    private static readonly ConcurrentDictionary<MethodInfo, HashSet<(Module, int)>?> Cache = new();
    private static readonly OpCode?[] OneByte = new OpCode?[256];
    private static readonly OpCode?[] TwoByte = new OpCode?[256];

#pragma warning disable CA1810 // The opcode tables are built once from the OpCodes fields; a static constructor reads best.
    static ClosureScan()
#pragma warning restore CA1810
    {
        foreach (FieldInfo field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var code = (OpCode)field.GetValue(null)!;
            ushort value = unchecked((ushort)code.Value);
            if (code.Size == 1)
            {
                OneByte[value] = code;
            }
            else
            {
                TwoByte[value & 0xFF] = code;
            }
        }
    }

    /// <summary>The fields (module, token) the method and what it calls read or write; null when unknown.</summary>
    public static IReadOnlySet<(Module Module, int Token)>? FieldsUsedBy(MethodInfo method) => Cache.GetOrAdd(method, Scan);

    /// <summary>Whether <paramref name="field"/> is among <paramref name="used"/> (null: all are).</summary>
    public static bool Uses(IReadOnlySet<(Module Module, int Token)>? used, FieldInfo field) =>
        used is null || used.Contains((field.Module, field.MetadataToken));

    private static HashSet<(Module, int)>? Scan(MethodInfo root)
    {
        var used = new HashSet<(Module, int)>();
        var seen = new HashSet<MethodBase>();
        var pending = new Stack<MethodBase>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            MethodBase method = pending.Pop();
            if (!seen.Add(method))
            {
                continue;
            }

            if (seen.Count > MaxMethods || !TryScan(method, root.Module, used, pending))
            {
                return null;
            }

            if (method.GetCustomAttribute<StateMachineAttribute>() is { StateMachineType: { } machine } &&
                machine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic) is { } moveNext)
            {
                pending.Push(ConstructLike(moveNext, method));
            }
        }

        return used;
    }

    /// <summary>A state machine nested in a generic closure type is generic too: close it over the same arguments.</summary>
    private static MethodInfo ConstructLike(MethodInfo moveNext, MethodBase owner)
    {
        Type machine = moveNext.DeclaringType!;
        if (!machine.IsGenericTypeDefinition || owner.DeclaringType is not { IsConstructedGenericType: true } declaring)
        {
            return moveNext;
        }

        Type[] arguments = declaring.GetGenericArguments();
        if (owner.IsGenericMethod)
        {
            arguments = [.. arguments, .. owner.GetGenericArguments()];
        }

        if (arguments.Length != machine.GetGenericArguments().Length)
        {
            return moveNext;
        }

        return machine.MakeGenericType(arguments).GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic) ?? moveNext;
    }

    private static bool TryScan(MethodBase method, Module home, HashSet<(Module, int)> used, Stack<MethodBase> pending)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            return false;
        }

        Type[]? typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        Type[]? methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int position = 0;
        while (position < il.Length)
        {
            OpCode? known;
            if (il[position] == 0xFE)
            {
                if (position + 1 >= il.Length)
                {
                    return false;
                }

                known = TwoByte[il[position + 1]];
                position += 2;
            }
            else
            {
                known = OneByte[il[position]];
                position += 1;
            }

            if (known is not { } code)
            {
                return false;
            }

            int operand = OperandSize(code.OperandType, il, position);
            if (operand < 0 || position + operand > il.Length)
            {
                return false;
            }

            try
            {
                if (code.OperandType == OperandType.InlineField)
                {
                    FieldInfo? field = method.Module.ResolveField(BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position)), typeArguments, methodArguments);
                    if (field is { DeclaringType: { } owner } && IsCompilerGenerated(owner))
                    {
                        used.Add((field.Module, field.MetadataToken));
                    }
                }
                else if (code.OperandType == OperandType.InlineTok)
                {
                    // ldtoken: an expression tree built inside the function names captured fields this way.
                    MemberInfo? member = method.Module.ResolveMember(BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position)), typeArguments, methodArguments);
                    if (member is FieldInfo { DeclaringType: { } owner } field && IsCompilerGenerated(owner))
                    {
                        used.Add((field.Module, field.MetadataToken));
                    }
                    else if (member is MethodBase callee && callee.Module == home && IsGeneratedCode(callee))
                    {
                        pending.Push(callee);
                    }
                }
                else if (code.OperandType == OperandType.InlineMethod)
                {
                    MethodBase? callee = method.Module.ResolveMethod(BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position)), typeArguments, methodArguments);
                    if (callee is not null && callee.Module == home && IsGeneratedCode(callee))
                    {
                        pending.Push(callee);
                    }
                }
            }
            catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or MissingMemberException)
            {
                // A token that does not resolve in this context: give up, and ship every field.
                return false;
            }

            position += operand;
        }

        return true;
    }

    /// <summary>Lambdas, local functions and closure methods: what the compiler made of the user's function.</summary>
    private static bool IsGeneratedCode(MethodBase method) =>
        method.Name.StartsWith('<') || (method.DeclaringType is { } type && IsCompilerGenerated(type));

    private static bool IsCompilerGenerated(Type type)
    {
        for (Type? t = type; t is not null; t = t.DeclaringType)
        {
            if (t.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false))
            {
                return true;
            }
        }

        return false;
    }

    private static int OperandSize(OperandType type, byte[] il, int position) => type switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => position + 4 <= il.Length ? 4 + (4 * BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position))) : -1,
        _ => 4,
    };
}
