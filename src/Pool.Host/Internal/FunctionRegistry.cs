using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>A function as the pool ships it: a small id and the reference a worker binds once.</summary>
internal sealed class ShippedFunction(int id, FunctionDescriptor descriptor, bool takesToken)
{
    public int Id => id;

    /// <summary>Whether its last parameter is a <see cref="CancellationToken"/>: it can be stopped without killing its worker.</summary>
    public bool TakesToken => takesToken;

    public FunctionDescriptor Descriptor => descriptor;

    public string DisplayName => descriptor.DisplayName;
}

/// <summary>
/// Turns delegates into <see cref="ShippedFunction"/>s, once per method and delegate type, and refuses at
/// the call what a worker could never run, naming it and saying what to do instead.
/// </summary>
internal sealed class FunctionRegistry
{
    private readonly ConcurrentDictionary<(MethodInfo Method, Type Delegate), ShippedFunction> _functions = new();
    private int _nextId;

    /// <exception cref="ArgumentException">The delegate cannot run in another process.</exception>
    public ShippedFunction Get(Delegate function, Type delegateType, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(function, parameterName);
        MethodInfo method = function.Method;
        if (_functions.TryGetValue((method, delegateType), out ShippedFunction? known) && IsReusable(known, function))
        {
            return known;
        }

        CheckShippable(function, method, parameterName);
        TargetKind kind = function.Target switch
        {
            null => TargetKind.None,
            { } target when IsCompilerSingleton(target) => TargetKind.Singleton,
            { } target => throw new ArgumentException(
                $"{parameterName} ({DisplayName(method)}) needs its target object, a {target.GetType().FullName}: " +
                "closures and instance methods cannot be shipped yet. Use a static method, or a lambda that captures nothing and takes what it needs as arguments.",
                parameterName),
        };

        return _functions.GetOrAdd((method, delegateType), _ => new ShippedFunction(
            Interlocked.Increment(ref _nextId),
            Describe(method, delegateType, kind),
            delegateType.GetMethod("Invoke")!.GetParameters() is { Length: > 0 } parameters && parameters[^1].ParameterType == typeof(CancellationToken)));
    }

    public static string DisplayName(MethodInfo method)
    {
        Type? type = method.DeclaringType;
        string name = method.Name;
        if (type is not null && type.IsDefined(typeof(CompilerGeneratedAttribute)) && type.DeclaringType is { } outer)
        {
            type = outer;
        }

        string owner = type is null ? "?" : FriendlyName(type);
        if (name.StartsWith('<'))
        {
            int close = name.IndexOf('>', StringComparison.Ordinal);
            string container = close > 1 ? name[1..close] : "?";
            if (name.Contains(">g__", StringComparison.Ordinal))
            {
                int start = name.IndexOf(">g__", StringComparison.Ordinal) + 4;
                int end = name.IndexOf('|', start);
                return $"local function {name[start..(end > start ? end : name.Length)]} in {owner}.{container}";
            }

            return $"lambda in {owner}.{container}";
        }

        string parameters = string.Join(", ", method.GetParameters().Select(p => FriendlyName(p.ParameterType)));
        return $"{owner}.{name}({parameters})";
    }

    private static string FriendlyName(Type type)
    {
        if (!type.IsGenericType)
        {
            return type.Name;
        }

        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        return (tick > 0 ? name[..tick] : name) + "<" + string.Join(", ", type.GetGenericArguments().Select(FriendlyName)) + ">";
    }

    private static bool IsReusable(ShippedFunction known, Delegate function) =>
        known.Descriptor.TargetKind != TargetKind.Serialized && (function.Target is null || IsCompilerSingleton(function.Target));

    private static void CheckShippable(Delegate function, MethodInfo method, string parameterName)
    {
        if (!function.HasSingleTarget)
        {
            throw new ArgumentException(
                $"{parameterName} is a multicast delegate of {function.GetInvocationList().Length} methods; pass one function.", parameterName);
        }

        if (method is DynamicMethod || method.DeclaringType is null || method.Module.Assembly.IsDynamic)
        {
            throw new ArgumentException(
                $"{parameterName} is a dynamic method ({method.Name}), made by a compiled expression tree or Reflection.Emit: a worker cannot find its code. " +
                "Pass a method, lambda or local function written in source.",
                parameterName);
        }

        if (method.Module.Assembly.IsCollectible)
        {
            throw new ArgumentException(
                $"{parameterName} ({DisplayName(method)}) is in assembly {method.Module.Assembly.GetName().Name}, loaded into a collectible AssemblyLoadContext: " +
                "workers load only the application's own dependencies. Move the function into an assembly the application references.",
                parameterName);
        }
    }

    private static bool IsCompilerSingleton(object target)
    {
        Type type = target.GetType();
        return type.IsDefined(typeof(CompilerGeneratedAttribute)) &&
            type.GetField("<>9", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null) == target;
    }

    private static FunctionDescriptor Describe(MethodInfo method, Type delegateType, TargetKind kind)
    {
        Assembly assembly = method.Module.Assembly;
        Type declaring = method.DeclaringType!;
        return new FunctionDescriptor(
            assembly.FullName!,
            assembly.Location,
            method.Module.ModuleVersionId,
            method.MetadataToken,
            declaring.AssemblyQualifiedName!,
            method.Name,
            method.IsGenericMethod ? [.. method.GetGenericArguments().Select(t => t.AssemblyQualifiedName!)] : [],
            delegateType.AssemblyQualifiedName!,
            kind,
            null,
            [],
            DisplayName(method));
    }
}
