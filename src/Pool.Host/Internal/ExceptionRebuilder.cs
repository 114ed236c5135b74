using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.Loader;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Turns a <see cref="RemoteError"/> back into an exception of its own type, as multiprocessing re-raises the
/// original exception: the type is looked up in the host's default load context, and only a public, concrete
/// type that derives from <see cref="Exception"/> is instantiated (the wire is not trusted to name anything else).
/// A constructor is chosen by its parameters' names: <c>message</c> takes the message as the worker's constructor
/// took it, <c>innerException</c> (or any <see cref="Exception"/> parameter) the first inner exception,
/// <c>innerExceptions</c> all of them, and any other parameter the travelled property of the same name
/// (<c>paramName</c> ← <c>ParamName</c>); public setters then take the other properties, and <see cref="Exception.Data"/>,
/// <see cref="Exception.HResult"/>, <see cref="Exception.Source"/> and <see cref="Exception.HelpLink"/> are set.
/// The worker's stack is attached with <see cref="ExceptionDispatchInfo.SetRemoteStackTrace"/>. When any of this is
/// not possible, or the rebuilt exception's message differs from the worker's, the error arrives as a
/// <see cref="RemoteException"/> whose message says why. Failure path only: reflection is fine here.
/// </summary>
internal static class ExceptionRebuilder
{
    private static readonly ConcurrentDictionary<(string Type, string Assembly), (Type? Type, string? Reason)> Types = new();

    private static readonly PropertyInfo HResultProperty = typeof(Exception).GetProperty(nameof(Exception.HResult))!;

    /// <summary>The exception a task failed with, as its own type when the host can rebuild it.</summary>
    public static Exception Rebuild(RemoteError error, long taskIndex)
    {
        Exception[] inner = [.. error.InnerErrors.Select(e => Rebuild(e, taskIndex))];
        string? reason;
        try
        {
            if (TryRebuild(error, inner, out Exception? rebuilt, out reason))
            {
                return rebuilt;
            }
        }
        catch (TargetInvocationException e)
        {
            // The type's own constructor or setter threw: its code ran with values from the worker and refused them.
            reason = $"its constructor or a setter threw {e.InnerException?.GetType().Name}";
        }
        catch (Exception e)
        {
            // Any other exception: the type's own members (its Message getter, say) are the user's code, and the task's
            // failure must still arrive.
            reason = $"reading the rebuilt exception threw {e.GetType().Name}";
        }

        return new RemoteException(error, taskIndex, reason);
    }

    private static bool TryRebuild(RemoteError error, Exception[] inner, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Exception? rebuilt, out string? reason)
    {
        rebuilt = null;
        (Type? type, reason) = Types.GetOrAdd((error.TypeName, error.AssemblyName), static key => Resolve(key.Type, key.Assembly));
        if (type is null)
        {
            return false;
        }

        RemoteState state = error.State;
        Dictionary<string, object?> properties = new(StringComparer.OrdinalIgnoreCase);
        foreach ((string name, RemoteValue value) in state.Properties)
        {
            if (value.TryGet(ResolveEnum, out object? v))
            {
                properties[name] = v;
            }
        }

        string? message = state.RawMessage ?? error.Message;
        if (!TryConstruct(type, message, inner, properties, out Exception? instance, out HashSet<string> used))
        {
            reason = $"{type.Name} has no public constructor the host can call with what travelled (its message, inner exceptions and simple public properties)";
            return false;
        }

        foreach ((string name, object? value) in properties)
        {
            if (!used.Contains(name) && type.GetProperty(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.IgnoreCase) is { SetMethod.IsPublic: true } property &&
                Fits(property.PropertyType, value))
            {
                property.SetValue(instance, value);
            }
        }

        foreach ((string key, RemoteValue value) in state.Data)
        {
            if (value.TryGet(ResolveEnum, out object? v))
            {
                instance.Data[key] = v;
            }
        }

        if (state.HResult != 0)
        {
            HResultProperty.SetValue(instance, state.HResult);
        }

        instance.Source = state.Source;
        instance.HelpLink = state.HelpLink;
        if (instance.Message != error.Message)
        {
            reason = $"the rebuilt {type.Name} says \"{instance.Message}\", not the worker's message";
            return false;
        }

        if (error.StackTrace is { Length: > 0 } stack)
        {
            ExceptionDispatchInfo.SetRemoteStackTrace(instance, stack);
        }

        rebuilt = instance;
        return true;
    }

    /// <summary>The type the error names, if the host may rebuild it; else why not.</summary>
    private static (Type? Type, string? Reason) Resolve(string typeName, string assemblyName)
    {
        if (typeName.Contains('[', StringComparison.Ordinal) || typeName.Contains(',', StringComparison.Ordinal))
        {
            return (null, "generic exception types are not rebuilt");
        }

        if (assemblyName is "Pool.Worker" or "Pool.Contracts" or "Pool.Host")
        {
            return (null, "it is an error of the pool's worker itself");
        }

        Type? type = Load(typeName, assemblyName);
        if (type is null)
        {
            return (null, $"the host cannot load {typeName} from {assemblyName}");
        }

        if (!typeof(Exception).IsAssignableFrom(type) || type.IsAbstract || type.ContainsGenericParameters)
        {
            return (null, $"{typeName} is not a concrete exception type in the host");
        }

        if (!type.IsVisible)
        {
            return (null, $"{typeName} is not public");
        }

        return (type, null);
    }

    private static Type? ResolveEnum(string typeName, string assemblyName) => Load(typeName, assemblyName) is { IsEnum: true } type ? type : null;

    /// <summary>A type from an assembly of the host's default load context (loading it from the app's dependencies if need be).</summary>
    private static Type? Load(string typeName, string assemblyName)
    {
        try
        {
            Assembly assembly = AssemblyLoadContext.Default.Assemblies.FirstOrDefault(a => a.GetName().Name == assemblyName)
                ?? AssemblyLoadContext.Default.LoadFromAssemblyName(new AssemblyName(assemblyName));
            return assembly.GetType(typeName, throwOnError: false);
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or ArgumentException)
        {
            // Not an assembly the host has, or not a valid name: the error arrives as a RemoteException.
            return null;
        }
    }

    /// <summary>Calls the public constructor that takes the most of what travelled, every parameter being filled.</summary>
    private static bool TryConstruct(
        Type type, string? message, Exception[] inner, Dictionary<string, object?> properties,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Exception? instance, out HashSet<string> used)
    {
        instance = null;
        used = new(StringComparer.OrdinalIgnoreCase);
        object?[]? best = null;
        ConstructorInfo? bestConstructor = null;
        HashSet<string>? bestUsed = null;
        int bestScore = -1;
        foreach (ConstructorInfo constructor in type.GetConstructors(BindingFlags.Instance | BindingFlags.Public))
        {
            ParameterInfo[] parameters = constructor.GetParameters();
            object?[] arguments = new object?[parameters.Length];
            var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            int score = 0;
            bool fits = true;
            for (int i = 0; i < parameters.Length && fits; i++)
            {
                ParameterInfo parameter = parameters[i];
                Type p = parameter.ParameterType;
                string name = parameter.Name ?? string.Empty;
                if (p == typeof(string) && name.Equals("message", StringComparison.OrdinalIgnoreCase))
                {
                    arguments[i] = message;
                    score += 2;
                }
                else if (p == typeof(Exception) && inner.Length > 0)
                {
                    arguments[i] = inner[0];
                    score += 2;
                }
                else if (p.IsAssignableFrom(typeof(Exception[])) && p != typeof(object) && inner.Length > 0)
                {
                    arguments[i] = inner;
                    score += 1 + inner.Length;
                }
                else if (properties.TryGetValue(name, out object? value) && Fits(p, value))
                {
                    arguments[i] = value;
                    taken.Add(name);
                    score++;
                }
                else if (parameter.HasDefaultValue)
                {
                    arguments[i] = parameter.DefaultValue;
                }
                else if (p == typeof(Exception) || (p == typeof(string) && name.Equals("message", StringComparison.OrdinalIgnoreCase)))
                {
                    arguments[i] = null;
                }
                else
                {
                    fits = false;
                }
            }

            if (fits && score > bestScore)
            {
                (best, bestConstructor, bestUsed, bestScore) = (arguments, constructor, taken, score);
            }
        }

        if (bestConstructor is null)
        {
            return false;
        }

        instance = (Exception)bestConstructor.Invoke(best);
        used = bestUsed!;
        return true;
    }

    private static bool Fits(Type type, object? value) =>
        value is null ? !type.IsValueType || Nullable.GetUnderlyingType(type) is not null : type.IsInstanceOfType(value);
}
