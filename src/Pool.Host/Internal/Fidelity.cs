using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Pool.Internal;

/// <summary>
/// Compares a value with the copy the serializer brought back, as a worker would get it, and names the first
/// place where they differ: a derived object that came back as its declared base type, a private field the
/// serializer does not write, a framework value it reads as zero (<c>BigInteger</c> without a converter), a
/// collection in another order. Objects of the application's own types are compared field by field, private
/// fields included, except those marked <see cref="NonSerializedAttribute"/> or belonging to a property the
/// serializer is told to ignore (<see cref="JsonIgnoreAttribute"/>); framework values by their own
/// <c>Equals</c>; collections element by element (the first <see cref="MaxElements"/>), sets by count; a lazy sequence is not run again.
/// A member declared <see cref="object"/> may come back as a <see cref="JsonElement"/>: that is documented.
/// </summary>
internal sealed class Fidelity
{
    private const int MaxDepth = 16;
    private const int MaxElements = 1000;

    private readonly Func<Type, bool> _trusted;
    private readonly HashSet<object> _seen = new(ReferenceEqualityComparer.Instance);

    private Fidelity(Func<Type, bool> trusted) => _trusted = trusted;

    /// <summary>Where the copy differs from the original, or null when the worker gets what the caller has.</summary>
    /// <param name="original">The caller's value.</param>
    /// <param name="copy">What the serializer read back from the original's bytes.</param>
    /// <param name="declared">The type the value is declared as (a parameter's, a field's).</param>
    /// <param name="trusted">Types whose own converter decides what travels; they are not looked into.</param>
    public static Difference? Find(object? original, object? copy, Type declared, Func<Type, bool> trusted) =>
        new Fidelity(trusted).Compare(original, copy, declared, string.Empty, 0);

    /// <summary>The types the serializer's own converters handle: a <see cref="JsonConverterAttribute"/>, or a converter in its options.</summary>
    public static Func<Type, bool> TrustedBy(PoolSerializer serializer)
    {
        IList<JsonConverter> converters = serializer is JsonPoolSerializer json ? json.Options.Converters : [];
        return type => type.IsDefined(typeof(JsonConverterAttribute), inherit: true) || converters.Any(c => c.CanConvert(type));
    }

    private Difference? Compare(object? original, object? copy, Type declared, string path, int depth)
    {
        if (original is null || copy is null)
        {
            return (original is null) == (copy is null) ? null : new Difference(path, Show(copy), Show(original), DifferenceKind.Value);
        }

        Type type = original.GetType();
        if (copy.GetType() != type)
        {
            if (declared == typeof(object) && copy is JsonElement or JsonNode)
            {
                return null;
            }

            // A collection declared as an interface (IEnumerable<T>, a LINQ query) comes back as the serializer's
            // own implementation of it: what counts is its elements.
            bool sameCollection = original is IEnumerable && (declared.IsInterface || declared.IsAbstract) && declared.IsInstanceOfType(copy);
            if (!sameCollection)
            {
                return new Difference(path, "a " + TargetCapture.Describe(copy.GetType()), "a " + TargetCapture.Describe(type), DifferenceKind.Type);
            }
        }

        if (original is string || type.IsPrimitive || type.IsEnum)
        {
            return original.Equals(copy) ? null : new Difference(path, Show(copy), Show(original), DifferenceKind.Value);
        }

        if (depth >= MaxDepth || _trusted(type) || !_seen.Add(original))
        {
            return null;
        }

        try
        {
            if (original is IEnumerable items)
            {
                return CompareElements(items, (IEnumerable)copy, type, path, depth);
            }

            if (TargetCapture.IsOwnObject(type) || IsFrameworkComposite(type))
            {
                return CompareFields(original, copy, type, path, depth);
            }

            // Another framework value: its own equality, when it has one (BigInteger, Complex, Uri, Version),
            // except a memory's, which compares where it points, not what.
            if (type.IsGenericType && type.GetGenericTypeDefinition() is { } definition && (definition == typeof(Memory<>) || definition == typeof(ReadOnlyMemory<>)))
            {
                return null;
            }

            MethodInfo? equals = type.GetMethod(nameof(Equals), [typeof(object)]);
            bool ownEquality = equals is not null && equals.DeclaringType != typeof(object) && equals.DeclaringType != typeof(ValueType);
            return !ownEquality || original.Equals(copy) ? null : new Difference(path, Show(copy), Show(original), DifferenceKind.Value);
        }
        finally
        {
            _seen.Remove(original);
        }
    }

    private Difference? CompareFields(object original, object copy, Type type, string path, int depth)
    {
        foreach ((_, FieldInfo field) in TargetCapture.FieldsOf(type))
        {
            if (Ignored(field))
            {
                continue;
            }

            string member = TargetCapture.IsOwnObject(type) ? TargetCapture.MemberName(field) : PublicName(field);
            if (Compare(field.GetValue(original), field.GetValue(copy), field.FieldType, Join(path, member), depth + 1) is { } difference)
            {
                return difference;
            }
        }

        return null;
    }

    private Difference? CompareElements(IEnumerable original, IEnumerable copy, Type type, string path, int depth)
    {
        // A lazy sequence (a LINQ query, the framework's internal types) is not run a second time: it may give other values.
        if ((!type.IsVisible && !TargetCapture.IsOwnObject(type)) || CountOf(original) is not { } count || CountOf(copy) is not { } copyCount)
        {
            return null;
        }

        if (count != copyCount)
        {
            return new Difference(path, $"{copyCount} elements", $"{count}", DifferenceKind.Value);
        }

        if (IsUnordered(type))
        {
            return null;
        }

        IEnumerator left = original.GetEnumerator();
        IEnumerator right = copy.GetEnumerator();
        try
        {
            for (int i = 0; i < MaxElements; i++)
            {
                bool more = left.MoveNext();
                if (!more || !right.MoveNext())
                {
                    return null;
                }

                if (Compare(left.Current, right.Current, typeof(object), Join(path, $"element [{i}]"), depth + 1) is { } difference)
                {
                    return difference;
                }
            }

            return null;
        }
        finally
        {
            (left as IDisposable)?.Dispose();
            (right as IDisposable)?.Dispose();
        }
    }

    /// <summary>The number of elements of a collection that knows it (not of a sequence that would have to run).</summary>
    private static int? CountOf(object collection)
    {
        if (collection is ICollection known)
        {
            return known.Count;
        }

        Type? counted = collection.GetType().GetInterfaces().FirstOrDefault(i =>
            i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(ICollection<>) || i.GetGenericTypeDefinition() == typeof(IReadOnlyCollection<>)));
        return (int?)counted?.GetProperty(nameof(ICollection.Count))?.GetValue(collection);
    }

    /// <summary>Framework types that are only their parts: tuples and key-value pairs.</summary>
    private static bool IsFrameworkComposite(Type type) =>
        type.IsGenericType && type.Namespace == "System" && type.Name.StartsWith("ValueTuple`", StringComparison.Ordinal)
        || type.IsGenericType && type.Namespace == "System" && type.Name.StartsWith("Tuple`", StringComparison.Ordinal)
        || type.IsGenericType && type.GetGenericTypeDefinition() == typeof(KeyValuePair<,>);

    private static bool IsUnordered(Type type) =>
        type.GetInterfaces().Any(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(ISet<>) || i.GetGenericTypeDefinition() == typeof(IReadOnlySet<>)))
        || (type.IsGenericType && type.Namespace == "System.Collections.Concurrent" && type.Name.StartsWith("ConcurrentBag`", StringComparison.Ordinal))
        || (type.IsGenericType && type.Namespace == "System.Collections.Concurrent" && type.Name.StartsWith("ConcurrentDictionary`", StringComparison.Ordinal))
        || type == typeof(Hashtable);

    /// <summary>A field the serializer is told to leave out: <c>[JsonIgnore]</c> on it or on the property it backs.</summary>
    private static bool Ignored(FieldInfo field)
    {
        if (field.IsDefined(typeof(JsonIgnoreAttribute), inherit: false))
        {
            return true;
        }

        string name = field.Name;
        if (name.StartsWith('<') && name.EndsWith(">k__BackingField", StringComparison.Ordinal))
        {
            PropertyInfo? property = field.DeclaringType?.GetProperty(
                name[1..name.IndexOf('>', StringComparison.Ordinal)], BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            return property?.IsDefined(typeof(JsonIgnoreAttribute), inherit: true) == true;
        }

        return false;
    }

    /// <summary>A tuple's or pair's part as users name it: <c>Item1</c>, <c>Key</c>.</summary>
    private static string PublicName(FieldInfo field) => field.Name.TrimStart('_').TrimStart('m').TrimStart('_') switch
    {
        "key" => "Key",
        "value" => "Value",
        var name => name,
    };

    private static string Join(string path, string member) => path.Length == 0 ? member : $"{member} of {path}";

    private static string Show(object? value)
    {
        if (value is null)
        {
            return "null";
        }

        string text = value switch
        {
            string s => "\"" + string.Concat(s.Take(40).Select(ch => char.IsSurrogate(ch) || char.IsControl(ch) ? $"\\u{(int)ch:X4}" : ch.ToString())) + (s.Length > 40 ? "…\"" : "\""),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? TargetCapture.Describe(value.GetType()),
        };

        return text.Length > 60 ? text[..60] + "…" : text;
    }
}

/// <summary>How a value arrives differently: what the worker would get, and what the caller has, at a place in the value.</summary>
/// <param name="Path">Where, from the value down ("field `_total` of property `Order`"); empty for the value itself.</param>
/// <param name="Arrives">What the worker would get there.</param>
/// <param name="Sent">What the caller has there.</param>
/// <param name="Kind">Another value, or another type.</param>
internal sealed record Difference(string Path, string Arrives, string Sent, DifferenceKind Kind)
{
    /// <summary>"at property `Price` of [2], the worker would get 0 instead of 12.5".</summary>
    public override string ToString() =>
        (Path.Length == 0 ? string.Empty : $"at {Path}, ") + $"the worker would get {Arrives} instead of {Sent}";
}

internal enum DifferenceKind
{
    /// <summary>Same type, different value (a field the serializer does not write, a value it cannot read).</summary>
    Value,

    /// <summary>Another type: the serializer wrote the declared type of a derived object.</summary>
    Type,
}
