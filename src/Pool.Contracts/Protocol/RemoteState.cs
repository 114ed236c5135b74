using System.Buffers;
using System.Globalization;
using System.Reflection;

namespace Pool.Contracts;

/// <summary>
/// The state of an exception beyond its type, message, stack and inner exceptions, so that the host can rebuild it
/// as its own type: the message as its constructor took it (<see cref="RawMessage"/>; <see cref="ArgumentException"/>
/// appends its parameter to <see cref="Exception.Message"/>), <see cref="Exception.HResult"/>, <see cref="Exception.Source"/>,
/// <see cref="Exception.HelpLink"/>, its own public properties and its <see cref="Exception.Data"/>, each only when its
/// value is a simple value (<see cref="RemoteValue"/>): other values stay in the worker. Read on the failure path only.
/// </summary>
internal sealed record RemoteState(
    string? RawMessage,
    int HResult,
    string? Source,
    string? HelpLink,
    IReadOnlyList<KeyValuePair<string, RemoteValue>> Properties,
    IReadOnlyList<KeyValuePair<string, RemoteValue>> Data)
{
    // The most properties and data entries one exception carries; the reader refuses more.
    private const int MaxMembers = 64;

    private static readonly FieldInfo? MessageField = typeof(Exception).GetField("_message", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>Properties every exception has, or that travel otherwise (inner exceptions, the stack).</summary>
    private static readonly HashSet<string> Excluded =
    [
        nameof(Exception.Message), nameof(Exception.StackTrace), nameof(Exception.Data), nameof(Exception.InnerException),
        nameof(Exception.TargetSite), nameof(Exception.HResult), nameof(Exception.Source), nameof(Exception.HelpLink),
        nameof(AggregateException.InnerExceptions),
    ];

    public static RemoteState Empty { get; } = new(null, 0, null, null, [], []);

    /// <summary>Reads the state of <paramref name="exception"/>. Never throws: a getter that throws leaves its property out.</summary>
    public static RemoteState Of(Exception exception)
    {
        var properties = new List<KeyValuePair<string, RemoteValue>>();
        foreach (PropertyInfo property in exception.GetType().GetProperties(BindingFlags.Instance | BindingFlags.Public))
        {
            if (properties.Count == MaxMembers || property.DeclaringType == typeof(Exception) || Excluded.Contains(property.Name) ||
                property.GetIndexParameters().Length > 0 || property.GetMethod is not { IsPublic: true })
            {
                continue;
            }

            if (Read(() => property.GetValue(exception), out object? value) && RemoteValue.TryFrom(value, out RemoteValue? remote))
            {
                properties.Add(new(property.Name, remote));
            }
        }

        var data = new List<KeyValuePair<string, RemoteValue>>();
        if (Read(() => exception.Data, out object? dictionary) && dictionary is System.Collections.IDictionary entries)
        {
            foreach (System.Collections.DictionaryEntry entry in entries)
            {
                if (data.Count < MaxMembers && entry.Key is string key && RemoteValue.TryFrom(entry.Value, out RemoteValue? remote))
                {
                    data.Add(new(key, remote));
                }
            }
        }

        string? raw = Read(() => MessageField?.GetValue(exception), out object? field) ? field as string : null;
        return new RemoteState(
            raw,
            exception.HResult,
            Read(() => exception.Source, out object? source) ? source as string : null,
            exception.HelpLink,
            properties,
            data);
    }

    public void Write(FrameWriter writer)
    {
        writer.WriteString(RawMessage);
        writer.WriteInt32(HResult);
        writer.WriteString(Source);
        writer.WriteString(HelpLink);
        WriteMembers(writer, Properties);
        WriteMembers(writer, Data);
    }

    public static RemoteState Read(ref SequenceReader<byte> reader)
    {
        string? raw = reader.ReadString();
        int hresult = reader.ReadInt32();
        string? source = reader.ReadString();
        string? helpLink = reader.ReadString();
        IReadOnlyList<KeyValuePair<string, RemoteValue>> properties = ReadMembers(ref reader);
        IReadOnlyList<KeyValuePair<string, RemoteValue>> data = ReadMembers(ref reader);
        return new RemoteState(raw, hresult, source, helpLink, properties, data);
    }

    private static void WriteMembers(FrameWriter writer, IReadOnlyList<KeyValuePair<string, RemoteValue>> members)
    {
        writer.WriteInt32(members.Count);
        foreach ((string name, RemoteValue value) in members)
        {
            writer.WriteString(name);
            value.Write(writer);
        }
    }

    private static KeyValuePair<string, RemoteValue>[] ReadMembers(ref SequenceReader<byte> reader)
    {
        int count = reader.ReadInt32();
        if (count < 0 || count > MaxMembers)
        {
            throw new ProtocolException($"A remote error claims {count} properties or data entries.");
        }

        var members = new KeyValuePair<string, RemoteValue>[count];
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadRequiredString();
            members[i] = new(name, RemoteValue.Read(ref reader));
        }

        return members;
    }

    /// <summary>Runs a getter of the user's exception, which may throw.</summary>
    private static bool Read(Func<object?> getter, out object? value)
    {
        try
        {
            value = getter();
            return true;
        }
        catch (Exception)
        {
            // Any exception: the getter is the user's code, and this report is how its task fails; the property stays behind.
            value = null;
            return false;
        }
    }
}

/// <summary>
/// A simple value as text: null, a string, a number, a bool, a char, a <see cref="Guid"/>, a date, a time span,
/// or an enum (by its type's name and its number). Anything else does not travel in an exception's state.
/// </summary>
internal sealed record RemoteValue(string Kind, string? Text, string? EnumType = null, string? EnumAssembly = null)
{
    private const string EnumKind = "enum";

    public static bool TryFrom(object? value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RemoteValue? remote)
    {
        CultureInfo invariant = CultureInfo.InvariantCulture;
        remote = value switch
        {
            null => new RemoteValue("null", null),
            string s => new RemoteValue(nameof(String), s),
            Enum e => new RemoteValue(EnumKind, Convert.ToDecimal(e, invariant).ToString(invariant), e.GetType().FullName, e.GetType().Assembly.GetName().Name),
            bool or char or sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal or Guid
                => new RemoteValue(value.GetType().Name, Convert.ToString(value, invariant)),
            TimeSpan t => new RemoteValue(nameof(TimeSpan), t.ToString("c", invariant)),
            DateTime d => new RemoteValue(nameof(DateTime), d.ToString("O", invariant)),
            DateTimeOffset d => new RemoteValue(nameof(DateTimeOffset), d.ToString("O", invariant)),
            _ => null,
        };
        return remote is not null;
    }

    /// <summary>The value again; false when the kind is unknown, the text does not parse, or (for an enum) <paramref name="resolveEnum"/> finds no such enum.</summary>
    public bool TryGet(Func<string, string, Type?> resolveEnum, out object? value)
    {
        CultureInfo invariant = CultureInfo.InvariantCulture;
        value = null;
        if (Kind == "null")
        {
            return true;
        }

        if (Text is not { } text)
        {
            return false;
        }

        try
        {
            value = Kind switch
            {
                nameof(String) => text,
                nameof(Boolean) => bool.Parse(text),
                nameof(Char) => char.Parse(text),
                nameof(SByte) => sbyte.Parse(text, invariant),
                nameof(Byte) => byte.Parse(text, invariant),
                nameof(Int16) => short.Parse(text, invariant),
                nameof(UInt16) => ushort.Parse(text, invariant),
                nameof(Int32) => int.Parse(text, invariant),
                nameof(UInt32) => uint.Parse(text, invariant),
                nameof(Int64) => long.Parse(text, invariant),
                nameof(UInt64) => ulong.Parse(text, invariant),
                nameof(Single) => float.Parse(text, invariant),
                nameof(Double) => double.Parse(text, invariant),
                nameof(Decimal) => decimal.Parse(text, invariant),
                nameof(Guid) => Guid.Parse(text, invariant),
                nameof(TimeSpan) => TimeSpan.ParseExact(text, "c", invariant),
                nameof(DateTime) => DateTime.ParseExact(text, "O", invariant, DateTimeStyles.RoundtripKind),
                nameof(DateTimeOffset) => DateTimeOffset.ParseExact(text, "O", invariant, DateTimeStyles.RoundtripKind),
                EnumKind when EnumType is { } name && EnumAssembly is { } assembly && resolveEnum(name, assembly) is { IsEnum: true } type
                    => Enum.ToObject(type, decimal.Parse(text, invariant) is var number && number < 0 ? (object)(long)number : (ulong)number),
                _ => null,
            };
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            // Not a value of its kind (a peer that is not a worker of this build): the member stays behind.
            return false;
        }

        return value is not null;
    }

    public void Write(FrameWriter writer)
    {
        writer.WriteString(Kind);
        writer.WriteString(Text);
        if (Kind == EnumKind)
        {
            writer.WriteString(EnumType);
            writer.WriteString(EnumAssembly);
        }
    }

    public static RemoteValue Read(ref SequenceReader<byte> reader)
    {
        string kind = reader.ReadRequiredString();
        string? text = reader.ReadString();
        return kind == EnumKind
            ? new RemoteValue(kind, text, reader.ReadString(), reader.ReadString())
            : new RemoteValue(kind, text);
    }
}
