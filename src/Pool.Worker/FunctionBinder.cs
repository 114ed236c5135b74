using System.Reflection;
using System.Runtime.Loader;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// Finds the method a <see cref="FunctionDescriptor"/> names and binds it once to a typed delegate; for a
/// closure or an instance method, on a target rebuilt from the descriptor (see <see cref="TargetBuilder"/>).
/// The method is resolved once per method and delegate type, since a function with a target is bound anew
/// for every call.
/// </summary>
internal sealed class FunctionBinder(CodecProvider codecs)
{
    private readonly Dictionary<string, (MethodInfo Method, Type Declaring, Type Delegate)> _resolved = [];

    public BoundFunction Bind(FunctionDescriptor function)
    {
        (MethodInfo method, Type declaring, Type delegateType) = Resolve(function);
        object? target = function.TargetKind switch
        {
            TargetKind.None => null,
            TargetKind.Singleton => declaring.GetField("<>9", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null)
                ?? throw new FunctionBindingException($"{declaring} has no compiler singleton for {function.DisplayName}."),
            TargetKind.Serialized => new TargetBuilder(codecs.Serializer, name => ResolveType(name, function), function.DisplayName)
                .Build(function.TargetType is { } targetType ? ResolveType(targetType, function) : declaring, function.Target),
            _ => throw new FunctionBindingException($"{function.DisplayName}: target kind {function.TargetKind} is not supported by this worker."),
        };

        Delegate bound = target is null ? method.CreateDelegate(delegateType) : method.CreateDelegate(delegateType, target);
        return BoundFunctions.Create(delegateType, bound, codecs, function.DisplayName);
    }

    private (MethodInfo Method, Type Declaring, Type Delegate) Resolve(FunctionDescriptor function)
    {
        string key = $"{function.ModuleVersionId:N}/{function.MetadataToken}/{function.DeclaringType}/{function.DelegateType}/{string.Join("|", function.GenericArguments)}";
        if (_resolved.TryGetValue(key, out (MethodInfo, Type, Type) known))
        {
            return known;
        }

        Assembly assembly = Load(new AssemblyName(function.AssemblyName), function);
        Guid loaded = assembly.ManifestModule.ModuleVersionId;
        if (loaded != function.ModuleVersionId)
        {
            throw new FunctionBindingException(
                $"The worker loaded a different build of {assembly.GetName().Name} than the host (module version {loaded} from " +
                $"'{assembly.Location}', the host has {function.ModuleVersionId}), so it will not run {function.DisplayName}. " +
                "The host and its workers must run the same build: rebuild, and check that the app's output holds one copy of the assembly.");
        }

        // Without a declaring type the token finds the method in the manifest module (see FunctionDescriptor).
        Type? declaring = function.DeclaringType is { } declaringName ? ResolveType(declaringName, function) : null;
        MethodInfo method = ResolveMethod(declaring, assembly.ManifestModule, function);
        declaring ??= method.DeclaringType!;
        Type delegateType = function.DelegateType is { } delegateName
            ? ResolveType(delegateName, function)
            : SignatureDelegate.Of(method) ?? throw new ProtocolException($"{function.DisplayName} has no Func or Action of its signature.");
        (MethodInfo, Type, Type) resolved = (method, declaring, delegateType);
        _resolved[key] = resolved;
        return resolved;
    }

    private static MethodInfo ResolveMethod(Type? declaring, Module manifest, FunctionDescriptor function)
    {
        MethodBase? found = (declaring?.Module ?? manifest).ResolveMethod(function.MetadataToken);
        if (found is MethodInfo open && declaring is { IsConstructedGenericType: true })
        {
            found = declaring.GetMemberWithSameMetadataDefinitionAs(open) as MethodInfo;
        }

        if (found is not MethodInfo method || method.Name != function.MethodName)
        {
            throw new FunctionBindingException(
                $"Token 0x{function.MetadataToken:x8} in {(object?)declaring ?? manifest} is not {function.DisplayName} in the worker; the builds differ.");
        }

        if (function.GenericArguments.Count > 0)
        {
            Type[] arguments = [.. function.GenericArguments.Select(name => ResolveType(name, function))];
            method = method.MakeGenericMethod(arguments);
        }

        return method;
    }

    private static Type ResolveType(string name, FunctionDescriptor function) =>
        Type.GetType(name, assemblyName => Load(assemblyName, function), null, throwOnError: false)
        ?? throw new FunctionBindingException(
            $"The worker cannot find type '{name}' needed by {function.DisplayName}. Types the function uses must come from " +
            "assemblies the application references (its deps.json), not from assemblies it loaded at run time from elsewhere.");

    private static Assembly Load(AssemblyName name, FunctionDescriptor function)
    {
        try
        {
            return AssemblyLoadContext.Default.LoadFromAssemblyName(name);
        }
        catch (FileNotFoundException) when (
            function.AssemblyLocation is { Length: > 0 } location &&
            string.Equals(name.Name, function.AssemblyName, StringComparison.OrdinalIgnoreCase) &&
            File.Exists(location))
        {
            // The host loaded the function's assembly from a path outside the app's dependencies.
            return AssemblyLoadContext.Default.LoadFromAssemblyPath(location);
        }
    }
}

/// <summary>A worker cannot find or bind the function the host sent.</summary>
internal sealed class FunctionBindingException(string message) : Exception(message);
