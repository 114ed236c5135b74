namespace Pool.Contracts;

/// <summary>
/// The fix for the two declarations no serializer can honour, said before the serializer's own words: a value
/// declared as an interface or abstract class (the reader builds what the declaration says), and a delegate as data.
/// </summary>
internal static class ValueAdvice
{
    /// <summary>
    /// Advice for a value declared as <paramref name="declared"/> (a parameter's type, a return type, or a tuple of
    /// parameter types) holding <paramref name="value"/>; null when neither case applies.
    /// </summary>
    public static string? For(Type declared, object? value, string declaredAs)
    {
        if (value is Delegate || typeof(Delegate).IsAssignableFrom(declared) || Components(declared).Any(t => typeof(Delegate).IsAssignableFrom(t)))
        {
            return "A delegate cannot travel as data: a worker runs only code it loads from the application's own assemblies. " +
                   "Make the delegate the function of the call (pool.Map(f, items), pool.Apply(f, x)), or send the data it works on " +
                   "and call the method inside the function.";
        }

        Type? open = Components(declared).FirstOrDefault(IsOpen) ?? (IsOpen(declared) ? declared : null);
        if (open is null)
        {
            return null;
        }

        string concrete = value is not null && value.GetType() != declared && !IsOpen(value.GetType()) && !value.GetType().Name.StartsWith("ValueTuple", StringComparison.Ordinal)
            ? $" (here {TypeFacts.Describe(value.GetType())})"
            : string.Empty;
        return $"{declaredAs} is declared as {TypeFacts.Describe(open)}, {(open.IsInterface ? "an interface" : "an abstract class")}: the reading side " +
               $"builds what the declaration says and cannot know which class to build. Declare it as the concrete type{concrete}, " +
               $"or, with the default MessagePack serializer, list the implementations on {open.Name} with [MessagePack.Union(0, typeof(Implementation))].";
    }

    /// <summary>The innermost exception: the serializer's own words, without the wrappers' advice.</summary>
    public static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner)
        {
            e = inner;
        }

        return e;
    }

    private static bool IsOpen(Type type) => (type.IsInterface || type.IsAbstract) && type != typeof(object) && !type.IsArray && !IsCollection(type);

    // Interface-typed collections (IList<T>, IReadOnlyDictionary<K, V>, IEnumerable<T>) have built-in readers in both serializers.
    private static bool IsCollection(Type type) =>
        type == typeof(string) || (type.IsGenericType && type.Namespace is "System.Collections.Generic" or "System.Collections.ObjectModel" or "System.Collections.Immutable") ||
        typeof(System.Collections.IEnumerable).IsAssignableFrom(type) && type.Namespace?.StartsWith("System", StringComparison.Ordinal) == true;

    private static Type[] Components(Type type) =>
        type.IsGenericType && type.FullName?.StartsWith("System.ValueTuple`", StringComparison.Ordinal) == true ? type.GetGenericArguments() : [];
}
