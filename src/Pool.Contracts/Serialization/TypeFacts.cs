using System.Reflection;
using System.Runtime.CompilerServices;

namespace Pool.Contracts;

/// <summary>What the pool needs to know of a type, on both sides: its C# name, whether it is the application's own.</summary>
internal static class TypeFacts
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, (int Depth, FieldInfo Field)[]> ObjectFieldCache = new();

    /// <summary>Whether <paramref name="type"/> is one of the compiler's closure classes (<c>&lt;&gt;c__DisplayClass</c>).</summary>
    public static bool IsClosure(Type type) =>
        type.Name.StartsWith("<>c__DisplayClass", StringComparison.Ordinal) && type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false);

    /// <summary>A type name as C# writes it: <c>List&lt;Int32&gt;</c>, with its namespace when not System.</summary>
    public static string Describe(Type type)
    {
        string name = type.IsGenericType ? type.Name[..Math.Max(type.Name.IndexOf('`', StringComparison.Ordinal), 0)] : type.Name;
        if (name.Length == 0)
        {
            name = type.Name;
        }

        if (type.IsGenericType)
        {
            name += "<" + string.Join(", ", type.GetGenericArguments().Select(Describe)) + ">";
        }

        if (type.IsNested && type.DeclaringType is { } outer && !type.IsGenericParameter)
        {
            return Describe(outer) + "." + name;
        }

        return type.Namespace is null or "System" || type.IsGenericParameter ? name : type.Namespace + "." + name;
    }

    /// <summary>A type of .NET itself (System.*, Microsoft.*): not the application's own.</summary>
    public static bool IsFrameworkType(Type type)
    {
        Assembly assembly = type.Assembly;
        if (assembly == typeof(object).Assembly)
        {
            return true;
        }

        string name = assembly.GetName().Name ?? string.Empty;
        return name is "System" or "netstandard" or "mscorlib" || name.StartsWith("System.", StringComparison.Ordinal) || name.StartsWith("Microsoft.", StringComparison.Ordinal);
    }

    /// <summary>An object of the application's own types (not the framework's, not compiler-made, not an array).</summary>
    public static bool IsOwnObject(Type type) =>
        !type.IsArray && !type.IsPrimitive && !type.IsEnum && !IsFrameworkType(type) &&
        !type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && !IsClosure(type);

    /// <summary>Every instance field of <paramref name="type"/> and its base types (not [NonSerialized] ones), with how many bases up it is declared.</summary>
    public static (int Depth, FieldInfo Field)[] FieldsOf(Type type) => ObjectFieldCache.GetOrAdd(type, ObjectFields);

    private static (int Depth, FieldInfo Field)[] ObjectFields(Type type)
    {
        var fields = new List<(int, FieldInfo)>();
        int depth = 0;
        for (Type? t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType, depth++)
        {
            foreach (FieldInfo field in t.GetFields(InstanceFields))
            {
                if (!field.IsDefined(typeof(NonSerializedAttribute), inherit: false))
                {
                    fields.Add((depth, field));
                }
            }
        }

        return [.. fields];
    }

    /// <summary>A field as the user wrote it: property <c>Name</c> for a backing field, parameter <c>x</c> for a primary constructor's.</summary>
    public static string MemberName(FieldInfo field)
    {
        string name = field.Name;
        if (name.StartsWith('<') && name.IndexOf('>', StringComparison.Ordinal) is > 1 and int close)
        {
            string member = name[1..close];
            return name.EndsWith("k__BackingField", StringComparison.Ordinal) ? $"property `{member}`"
                : name.EndsWith(">P", StringComparison.Ordinal) ? $"parameter `{member}`"
                : $"field `{name}`";
        }

        return $"field `{name}`";
    }
}
