using System.Collections;
using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MessagePack;

namespace Pool.Contracts;

/// <summary>
/// Compares a value with the copy the serializer brought back, as a worker would get it, and names the first
/// place where they differ: a derived object that came back as its declared base type, a private field the
/// serializer does not write, a framework value it reads as zero (<c>BigInteger</c> without a converter), a
/// collection in another order. Objects of the application's own types are compared field by field, private
/// fields included, except those marked <see cref="NonSerializedAttribute"/> or belonging to a property the
/// serializer is told to ignore (<see cref="JsonIgnoreAttribute"/>); framework values by their own
/// <c>Equals</c>; collections element by element (the first <see cref="MaxElements"/>), sets by count; a lazy sequence is not run again.
/// A member declared <see cref="object"/> may come back as a <see cref="JsonElement"/> (JSON), an <c>object[]</c> or a
/// <c>Dictionary&lt;object, object&gt;</c> (MessagePack): that is documented.
/// </summary>
internal sealed class Fidelity
{
    private const int MaxDepth = 16;
    private const int MaxElements = 1000;

    /// <summary>How each type is compared, per serializer (its converters decide which types are trusted).</summary>
    private static readonly ConditionalWeakTable<PoolSerializer, ConcurrentDictionary<Type, Shape>> ShapesBySerializer = new();

    private readonly ConcurrentDictionary<Type, Shape> _shapes;
    private readonly IList<JsonConverter> _converters;
    private HashSet<object>? _seen;

    private Fidelity(PoolSerializer serializer)
    {
        _shapes = ShapesBySerializer.GetValue(serializer, static _ => new ConcurrentDictionary<Type, Shape>());
        _converters = serializer is JsonPoolSerializer json ? json.Options.Converters : [];
    }

    private enum Way
    {
        /// <summary>A string, a primitive, an enum: by <c>Equals</c>.</summary>
        Equal,

        /// <summary>Not looked into: a type with its own converter, a lazy sequence, a value without equality of its own.</summary>
        Skip,

        /// <summary>A collection: count, then the first <see cref="MaxElements"/> elements in order.</summary>
        Elements,

        /// <summary>A set or a bag: count only.</summary>
        Count,

        /// <summary>An object of the application's own types, a tuple, a pair: field by field.</summary>
        Fields,

        /// <summary>A framework value with an <c>Equals</c> of its own (BigInteger, Uri, Version).</summary>
        OwnEquals,
    }

    /// <summary>Where the copy differs from the original, or null when the worker gets what the caller has.</summary>
    /// <param name="original">The caller's value.</param>
    /// <param name="copy">What <paramref name="serializer"/> read back from the original's bytes.</param>
    /// <param name="declared">The type the value is declared as (a parameter's, a field's).</param>
    /// <param name="serializer">The pool's serializer; types its converters handle are trusted, not looked into.</param>
    public static Difference? Find(object? original, object? copy, Type declared, PoolSerializer serializer) =>
        new Fidelity(serializer).Compare(original, copy, declared, 0);

    /// <summary>What to do about a value that arrives different, by the kind of difference and the serializer; <paramref name="receiver"/> is "a worker" or "the host".</summary>
    public static string HowToKeep(Difference difference, PoolSerializer serializer, string receiver = "a worker")
    {
        bool json = serializer is JsonPoolSerializer;
        if (difference.Kind == DifferenceKind.Comparer)
        {
            return "A sorted collection's comparer does not travel, and the copy is sorted by the default order: send its items " +
                "(a list or a dictionary) and build the sorted collection with its comparer in the function.";
        }

        if (difference.Kind == DifferenceKind.BoxedEnum)
        {
            return "An enum in a member declared object travels as its number, and nothing on the reading side says which enum it was: " +
                "declare the member as the enum type (or as a type that holds it), or send its name or number yourself.";
        }

        if (difference.Kind == DifferenceKind.Type)
        {
            return json
                ? "The serializer writes an object as its declared type, so a derived object loses what the base type does not have: " +
                  "declare it as its own type, or list the derived types on the base type with [JsonDerivedType] (System.Text.Json polymorphism)."
                : "The serializer writes an object as its declared type, so a derived object loses what the base type does not have: " +
                  "declare it as its own type, or declare it as an interface or abstract class that lists its implementations with MessagePack's " +
                  "[Union(0, typeof(Derived))] (with JsonPoolSerializer, [JsonDerivedType] on the base type does the same).";
        }

        return json
            ? $"Give the type public properties or constructor parameters for the state {receiver} needs, mark fields {receiver} does not need " +
              "[NonSerialized] (or [JsonIgnore] on their property), send the value in a form the serializer brings back (a string, a number), " +
              "or set ProcessPoolOptions.Serializer to one that handles the type."
            : $"Give the type members and a constructor (parameters named as its members, or none) for the state {receiver} needs, mark fields " +
              $"{receiver} does not need [NonSerialized] (or [IgnoreMember]), send the value in a form the serializer brings back (a string, a number), " +
              "or set ProcessPoolOptions.Serializer to one that handles the type.";
    }

    private Difference? Compare(object? original, object? copy, Type declared, int depth)
    {
        if (original is null || copy is null)
        {
            return (original is null) == (copy is null) ? null : new Difference(string.Empty, Show(copy), Show(original), DifferenceKind.Value);
        }

        Type type = original.GetType();
        if (copy.GetType() != type)
        {
            // Documented: a member declared object that holds another type arrives as the serializer's own shape of it.
            if (declared == typeof(object) && copy is JsonElement or JsonNode or object?[] or Dictionary<object, object?>)
            {
                return null;
            }

            // A collection declared as an interface (IEnumerable<T>, a LINQ query) comes back as the serializer's
            // own implementation of it: what counts is its elements.
            bool sameCollection = original is IEnumerable && (declared.IsInterface || declared.IsAbstract) && declared.IsInstanceOfType(copy);
            if (original is Enum && declared == typeof(object))
            {
                return new Difference(string.Empty, "a " + TypeFacts.Describe(copy.GetType()), "a " + TypeFacts.Describe(type), DifferenceKind.BoxedEnum);
            }

            if (!sameCollection)
            {
                return new Difference(string.Empty, "a " + TypeFacts.Describe(copy.GetType()), "a " + TypeFacts.Describe(type), DifferenceKind.Type);
            }
        }

        Shape shape = ShapeFor(type);
        switch (shape.Way)
        {
            case Way.Equal:
            case Way.OwnEquals:
                return original.Equals(copy) ? null : new Difference(string.Empty, Show(copy), Show(original), DifferenceKind.Value);
            case Way.Skip:
                return null;
        }

        bool originalIsDefault = HasNoArray(original);
        bool copyIsDefault = HasNoArray(copy);
        if (originalIsDefault || copyIsDefault)
        {
            // default(ImmutableArray<T>) (a record's unset member) or default(ArraySegment<T>): no array, and Count or enumeration throws.
            return originalIsDefault == copyIsDefault
                ? null
                : new Difference(string.Empty, copyIsDefault ? "a default " + TypeFacts.Describe(type) : "a non-default one", originalIsDefault ? "a default " + TypeFacts.Describe(type) : "a non-default one", DifferenceKind.Value);
        }

        _seen ??= new HashSet<object>(ReferenceEqualityComparer.Instance);
        if (depth >= MaxDepth || !_seen.Add(original))
        {
            return null;
        }

        try
        {
            if (shape.Way == Way.Fields)
            {
                return CompareFields(original, copy, shape, depth);
            }

            Difference? difference = CompareElements((IEnumerable)original, (IEnumerable)copy, ordered: shape.Way == Way.Elements, depth);
            // A sorted collection whose order is its own comparer's: the copy is sorted by the default one.
            return difference is not null && IsSortedWithOwnComparer(type, original, copy) ? difference with { Kind = DifferenceKind.Comparer } : difference;
        }
        finally
        {
            _seen.Remove(original);
        }
    }

    private Difference? CompareFields(object original, object copy, Shape shape, int depth)
    {
        foreach ((FieldInfo field, string name) in shape.Fields)
        {
            if (Compare(field.GetValue(original), field.GetValue(copy), field.FieldType, depth + 1) is { } difference)
            {
                return difference.Within(name);
            }
        }

        return null;
    }

    private Difference? CompareElements(IEnumerable original, IEnumerable copy, bool ordered, int depth)
    {
        int? count = CountOf(original);
        int? copyCount = CountOf(copy);
        if (count is null || copyCount is null)
        {
            // Not a collection that knows its count: a sequence that would have to run again.
            return null;
        }

        if (count != copyCount)
        {
            return new Difference(string.Empty, $"{copyCount} elements", $"{count}", DifferenceKind.Value);
        }

        if (!ordered)
        {
            return null;
        }

        IEnumerator left = original.GetEnumerator();
        IEnumerator right = copy.GetEnumerator();
        try
        {
            for (int i = 0; i < MaxElements && left.MoveNext() && right.MoveNext(); i++)
            {
                if (Compare(left.Current, right.Current, typeof(object), depth + 1) is { } difference)
                {
                    return difference.Within($"element [{i}]");
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
    private int? CountOf(object collection) => collection is ICollection known
        ? known.Count
        : (int?)ShapeFor(collection.GetType()).Count?.GetValue(collection);

    private Shape ShapeFor(Type type) => _shapes.GetOrAdd(type, static (t, self) => self.ShapeOf(t), this);

    private Shape ShapeOf(Type type)
    {
        if (type == typeof(string) || type.IsPrimitive || type.IsEnum)
        {
            return Shape.Equal;
        }

        if (type.IsDefined(typeof(JsonConverterAttribute), inherit: true) || type.IsDefined(typeof(MessagePackFormatterAttribute), inherit: true) ||
            _converters.Any(c => c.CanConvert(type)))
        {
            return Shape.Skip;
        }

        bool own = TypeFacts.IsOwnObject(type);
        if (typeof(IEnumerable).IsAssignableFrom(type))
        {
            // A LINQ query and the framework's other internal sequences are not run a second time.
            Type? counted = type.GetInterfaces().FirstOrDefault(i =>
                i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(ICollection<>) || i.GetGenericTypeDefinition() == typeof(IReadOnlyCollection<>)));
            return !type.IsVisible && !own ? Shape.Skip
                : new Shape(IsUnordered(type) ? Way.Count : Way.Elements, [], counted?.GetProperty(nameof(ICollection.Count)));
        }

        if (own || IsFrameworkComposite(type))
        {
            return new Shape(Way.Fields, [.. TypeFacts.FieldsOf(type)
                .Where(f => !Ignored(f.Field))
                .Select(f => (f.Field, own ? TypeFacts.MemberName(f.Field) : PublicName(f.Field)))]);
        }

        // Another framework value: its own equality, when it has one (BigInteger, Complex, Uri, Version),
        // except a memory's, which compares where it points, not what.
        if (type.IsGenericType && type.GetGenericTypeDefinition() is { } definition && (definition == typeof(Memory<>) || definition == typeof(ReadOnlyMemory<>)))
        {
            return Shape.Skip;
        }

        MethodInfo? equals = type.GetMethod(nameof(Equals), [typeof(object)]);
        return equals is not null && equals.DeclaringType != typeof(object) && equals.DeclaringType != typeof(ValueType) ? Shape.OwnEquals : Shape.Skip;
    }

    /// <summary>Framework types that are only their parts: tuples and key-value pairs.</summary>
    private static bool IsFrameworkComposite(Type type) =>
        type.IsGenericType && type.Namespace == "System" && type.Name.StartsWith("ValueTuple`", StringComparison.Ordinal)
        || type.IsGenericType && type.Namespace == "System" && type.Name.StartsWith("Tuple`", StringComparison.Ordinal)
        || type.IsGenericType && type.GetGenericTypeDefinition() == typeof(KeyValuePair<,>);

    private static bool IsSortedWithOwnComparer(Type type, object original, object copy) =>
        (type.Name.StartsWith("Sorted", StringComparison.Ordinal) || type.Name.StartsWith("ImmutableSorted", StringComparison.Ordinal)) &&
        (type.GetProperty("Comparer") ?? type.GetProperty("KeyComparer")) is { } property &&
        property.GetValue(original)?.GetType() != property.GetValue(copy)?.GetType();

    /// <summary>A default <c>ImmutableArray&lt;T&gt;</c> or <c>ArraySegment&lt;T&gt;</c>: no array, and its Count or enumeration throws.</summary>
    private static bool HasNoArray(object value) =>
        value.GetType() is { IsGenericType: true, IsValueType: true } type && type.GetGenericTypeDefinition() is { } definition && (
            definition == typeof(System.Collections.Immutable.ImmutableArray<>) && (bool)type.GetProperty(nameof(System.Collections.Immutable.ImmutableArray<int>.IsDefault))!.GetValue(value)!
            || definition == typeof(ArraySegment<>) && type.GetProperty(nameof(ArraySegment<int>.Array))!.GetValue(value) is null);

    // Collections whose order is their hashing's: a copy may list the same elements in another order.
    private static bool IsUnordered(Type type) =>
        type.GetInterfaces().Any(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(ISet<>) || i.GetGenericTypeDefinition() == typeof(IReadOnlySet<>)))
        || (type.IsGenericType && type.Namespace == "System.Collections.Concurrent" && type.Name.StartsWith("ConcurrentBag`", StringComparison.Ordinal))
        || (type.IsGenericType && type.Namespace == "System.Collections.Concurrent" && type.Name.StartsWith("ConcurrentDictionary`", StringComparison.Ordinal))
        || (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(System.Collections.Immutable.ImmutableDictionary<,>))
        || type == typeof(Hashtable);

    /// <summary>A field the serializer is told to leave out: <c>[JsonIgnore]</c>, <c>[IgnoreMember]</c> or <c>[IgnoreDataMember]</c> on it or on the property it backs.</summary>
    private static bool Ignored(FieldInfo field)
    {
        if (IsIgnore(field))
        {
            return true;
        }

        string name = field.Name;
        if (name.StartsWith('<') && name.EndsWith(">k__BackingField", StringComparison.Ordinal))
        {
            PropertyInfo? property = field.DeclaringType?.GetProperty(
                name[1..name.IndexOf('>', StringComparison.Ordinal)], BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            return property is not null && IsIgnore(property);
        }

        return false;
    }

    private static bool IsIgnore(MemberInfo member) =>
        member.IsDefined(typeof(JsonIgnoreAttribute), inherit: true) || member.IsDefined(typeof(IgnoreMemberAttribute), inherit: true) ||
        member.IsDefined(typeof(IgnoreDataMemberAttribute), inherit: true);

    /// <summary>A tuple's or pair's part as users name it: <c>Item1</c> (<c>m_Item1</c> in a <c>Tuple</c>), <c>Key</c>, <c>Value</c>.</summary>
    private static string PublicName(FieldInfo field) => field.Name switch
    {
        "key" => "Key",
        "value" => "Value",
        var name when name.StartsWith("m_", StringComparison.Ordinal) => name[2..],
        var name => name,
    };

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
            _ => value.ToString() ?? TypeFacts.Describe(value.GetType()),
        };

        return text.Length > 60 ? text[..60] + "…" : text;
    }

    /// <summary>How a type is compared; the fields to compare with their names as users wrote them; a collection's count.</summary>
    private sealed record Shape(Way Way, (FieldInfo Field, string Name)[] Fields, PropertyInfo? Count = null)
    {
        public static readonly Shape Equal = new(Way.Equal, []);
        public static readonly Shape Skip = new(Way.Skip, []);
        public static readonly Shape OwnEquals = new(Way.OwnEquals, []);
    }
}

/// <summary>How a value arrives differently: what the worker would get, and what the caller has, at a place in the value.</summary>
/// <param name="Path">Where, from the value down ("field `_total` of property `Order`"); empty for the value itself.</param>
/// <param name="Arrives">What the worker would get there.</param>
/// <param name="Sent">What the caller has there.</param>
/// <param name="Kind">Another value, or another type.</param>
internal sealed record Difference(string Path, string Arrives, string Sent, DifferenceKind Kind)
{
    /// <summary>The same difference seen from the value that holds it as <paramref name="member"/>.</summary>
    public Difference Within(string member) => this with { Path = Path.Length == 0 ? member : $"{Path} of {member}" };

    /// <summary>"at property `Price` of [2], the worker would get 0 instead of 12.5".</summary>
    public override string ToString() => Text("the worker");

    /// <summary>As <see cref="ToString"/>, for another <paramref name="receiver"/> ("the host" for a result).</summary>
    public string Text(string receiver) =>
        (Path.Length == 0 ? string.Empty : $"at {Path}, ") + $"{receiver} would get {Arrives} instead of {Sent}";
}

internal enum DifferenceKind
{
    /// <summary>Same type, different value (a field the serializer does not write, a value it cannot read).</summary>
    Value,

    /// <summary>Another type: the serializer wrote the declared type of a derived object.</summary>
    Type,

    /// <summary>An enum held in a member declared <c>object</c>, which arrives as its number.</summary>
    BoxedEnum,

    /// <summary>A sorted collection with a comparer of its own, which the copy does not have.</summary>
    Comparer,
}
