using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// A function as the pool ships it: a small id and the reference a worker binds once. A function with a
/// target object (a closure, an instance method) is shipped <see cref="PerCall"/>: its id and its
/// serialized target belong to one call, and workers forget it when the call is done.
/// </summary>
internal sealed class ShippedFunction(int id, FunctionDescriptor descriptor, bool takesToken, bool perCall = false)
{
    public int Id => id;

    /// <summary>Whether its last parameter is a <see cref="CancellationToken"/>: it can be stopped without killing its worker.</summary>
    public bool TakesToken => takesToken;

    /// <summary>Whether it carries a target serialized for one call: unbound from the workers when that call is done.</summary>
    public bool PerCall => perCall;

    public FunctionDescriptor Descriptor => descriptor;

    public string DisplayName => descriptor.DisplayName;
}

/// <summary>
/// Turns delegates into <see cref="ShippedFunction"/>s and refuses at the call what a worker could never run,
/// naming it and saying what to do instead. A static method or a lambda that captures nothing is described
/// once per method and delegate type; a closure or an instance method gets its target serialized at every
/// call (see <see cref="TargetCapture"/>), with the method's description reused.
/// </summary>
internal sealed class FunctionRegistry(PoolSerializer serializer)
{
    private readonly ConcurrentDictionary<(MethodInfo Method, Type Delegate), ShippedFunction> _functions = new();
    private readonly ConcurrentDictionary<(MethodInfo Method, Type Delegate), FunctionDescriptor> _withTarget = new();
    private int _nextId;

    public FunctionRegistry()
        : this(PoolSerializer.Default)
    {
    }

    /// <exception cref="ArgumentException">The delegate cannot run in another process; the message names why.</exception>
    public ShippedFunction Get(Delegate function, Type delegateType, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(function, parameterName);
        MethodInfo method = function.Method;
        object? target = function.Target;
        bool byReference = target is null || IsCompilerSingleton(target);
        if (byReference && _functions.TryGetValue((method, delegateType), out ShippedFunction? known))
        {
            return known;
        }

        CheckShippable(function, method, delegateType, parameterName);
        bool takesToken = delegateType.GetMethod("Invoke")!.GetParameters() is { Length: > 0 } parameters && parameters[^1].ParameterType == typeof(CancellationToken);
        if (byReference)
        {
            return _functions.GetOrAdd((method, delegateType), _ => new ShippedFunction(
                Interlocked.Increment(ref _nextId), Describe(method, delegateType, target is null ? TargetKind.None : TargetKind.Singleton), takesToken));
        }

        FunctionDescriptor described = _withTarget.GetOrAdd((method, delegateType), static key => Describe(key.Method, key.Delegate, TargetKind.Serialized));
        byte[] bytes;
        try
        {
            bytes = TargetCapture.Capture(target!, method, serializer, $"{parameterName} ({described.DisplayName})");
        }
        catch (ArgumentException e) when (e.ParamName is null)
        {
            throw new ArgumentException(e.Message, parameterName, e.InnerException);
        }

        return new ShippedFunction(
            Interlocked.Increment(ref _nextId),
            described with { TargetType = target!.GetType() == method.DeclaringType ? null : target.GetType().AssemblyQualifiedName, Target = bytes },
            takesToken,
            perCall: true);
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
            string container = ContainerOf(name);
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

    /// <summary>The method a lambda or local function was written in: <c>&lt;Main&gt;b__0</c> → Main; top-level statements' <c>&lt;&lt;Main&gt;$&gt;b__0</c> → Main.</summary>
    private static string ContainerOf(string name)
    {
        int depth = 0;
        for (int i = 0; i < name.Length; i++)
        {
            depth += name[i] switch { '<' => 1, '>' => -1, _ => 0 };
            if (depth == 0)
            {
                string container = name[1..i];
                return container.StartsWith('<') && container.EndsWith(">$", StringComparison.Ordinal) ? container[1..^2] : container.Length > 0 ? container : "?";
            }
        }

        return "?";
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

    private static void CheckShippable(Delegate function, MethodInfo method, Type delegateType, string parameterName)
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

        // An async void method returns at its first await: the worker would report the task done while its work runs on,
        // unwatched, and an exception it throws later would crash the worker and be blamed on whichever task runs then.
        if (method.ReturnType == typeof(void) && method.IsDefined(typeof(AsyncStateMachineAttribute), inherit: false))
        {
            throw new ArgumentException(
                $"{parameterName} ({DisplayName(method)}) is an async void method: it returns at its first await, so a worker cannot tell when it ends " +
                "or whether it failed (its exception would crash the worker later). Declare it async Task (or async Task<T>): the worker awaits it.",
                parameterName);
        }

        // A bare Task or ValueTask is awaited in the worker, as a void function is run: nothing comes back.
        Type returned = delegateType.GetMethod("Invoke")!.ReturnType;
        Type result = returned.IsGenericType && (returned.GetGenericTypeDefinition() == typeof(Task<>) || returned.GetGenericTypeDefinition() == typeof(ValueTask<>))
            ? returned.GetGenericArguments()[0]
            : returned;
        if (result != typeof(void) && result != typeof(Task) && result != typeof(ValueTask) && Unshippable.Check(result) is { } reason)
        {
            throw new ArgumentException(
                $"{parameterName} ({DisplayName(method)}) returns a {TypeFacts.Describe(result)}, which cannot come back from a worker: {reason.Why}. Return plain data instead.",
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
        bool foundByToken = !declaring.IsGenericType && method.Module == assembly.ManifestModule;
        return new FunctionDescriptor(
            assembly.GetName().Name!,
            assembly.Location,
            method.Module.ModuleVersionId,
            method.MetadataToken,
            foundByToken ? null : declaring.AssemblyQualifiedName!,
            method.Name,
            method.IsGenericMethod ? [.. method.GetGenericArguments().Select(t => t.AssemblyQualifiedName!)] : [],
            SignatureDelegate.Of(method) == delegateType ? null : delegateType.AssemblyQualifiedName!,
            kind,
            null,
            [],
            DisplayName(method));
    }
}
