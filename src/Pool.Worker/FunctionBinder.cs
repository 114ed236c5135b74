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
                .Build(ResolveType(function.TargetType ?? throw new ProtocolException("A serialized target without its type."), function), function.Target),
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

        Type declaring = ResolveType(function.DeclaringType, function);
        (MethodInfo, Type, Type) resolved = (ResolveMethod(declaring, function), declaring, ResolveType(function.DelegateType, function));
        _resolved[key] = resolved;
        return resolved;
    }

    private static MethodInfo ResolveMethod(Type declaring, FunctionDescriptor function)
    {
        MethodBase? found = declaring.Module.ResolveMethod(function.MetadataToken);
        if (found is MethodInfo open && declaring.IsConstructedGenericType)
        {
            found = declaring.GetMemberWithSameMetadataDefinitionAs(open) as MethodInfo;
        }

        if (found is not MethodInfo method || method.Name != function.MethodName)
        {
            throw new FunctionBindingException(
                $"Token 0x{function.MetadataToken:x8} in {declaring} is not {function.DisplayName} in the worker; the builds differ.");
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
            AssemblyName.ReferenceMatchesDefinition(name, new AssemblyName(function.AssemblyName)) &&
            File.Exists(location))
        {
            // The host loaded the function's assembly from a path outside the app's dependencies.
            return AssemblyLoadContext.Default.LoadFromAssemblyPath(location);
        }
    }
}

/// <summary>A worker cannot find or bind the function the host sent.</summary>
internal sealed class FunctionBindingException(string message) : Exception(message);
