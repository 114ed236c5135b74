using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Pool.Contracts;

namespace Pool;

/// <summary>
/// The serializer that writes values as JSON, an option (the default is <see cref="MessagePackPoolSerializer"/>).
/// Numbers, <see cref="bool"/>, <see cref="char"/>, enums, <see cref="Guid"/>, dates, <see cref="decimal"/> and arrays of them travel as their raw bytes, strings as UTF-8; records,
/// classes, structs, lists, dictionaries and tuples travel as JSON through System.Text.Json, fields
/// included (so value tuples work) and NaN and infinities allowed.
/// </summary>
/// <remarks>
/// To use your own <see cref="JsonSerializerOptions"/> (a source-generated context, converters), derive a
/// class with a public parameterless constructor that passes them to the base constructor, and set it as
/// <c>ProcessPoolOptions.Serializer</c>: the workers create the same class. <see cref="Serialize{T}"/> and
/// <see cref="Deserialize{T}"/> are sealed, because the pool writes raw values and arrays of them itself,
/// without calling them; for another encoding, derive from <see cref="PoolSerializer"/> instead.
/// A member typed <see cref="object"/> comes back as a <see cref="JsonElement"/>, as System.Text.Json does.
/// </remarks>
public class JsonPoolSerializer : PoolSerializer
{
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Creates the serializer with <see cref="CreateDefaultOptions"/>.</summary>
    public JsonPoolSerializer()
        : this(CreateDefaultOptions())
    {
        HasDefaultOptions = true;
    }

    /// <summary>Creates the serializer with the given options, which become read-only.</summary>
    public JsonPoolSerializer(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.IsReadOnly)
        {
            options.TypeInfoResolver ??= new DefaultJsonTypeInfoResolver();
            options.MakeReadOnly();
        }

        Options = options;
    }

    /// <summary>The options used for JSON values.</summary>
    public JsonSerializerOptions Options { get; }

    /// <summary>Made by the parameterless constructor: a worker's own instance of the type is the same.</summary>
    internal bool HasDefaultOptions { get; }

    /// <summary>
    /// The defaults: <see cref="JsonSerializerOptions.IncludeFields"/>, named floating-point literals, and converters
    /// for the framework types System.Text.Json would bring back wrong (<c>BigInteger</c> and <c>Complex</c> as zero,
    /// <c>Stack&lt;T&gt;</c> reversed). Start your own options from these.
    /// </summary>
    public static JsonSerializerOptions CreateDefaultOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.General)
        {
            IncludeFields = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        };
        foreach (JsonConverter converter in FrameworkConverters.All)
        {
            options.Converters.Add(converter);
        }

        return options;
    }

    /// <inheritdoc />
    public sealed override void Serialize<T>(IBufferWriter<byte> writer, T value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (!RawValues.TryWrite(writer, value))
        {
            WriteJson(writer, value);
        }
    }

    /// <inheritdoc />
    public sealed override T Deserialize<T>(ReadOnlySequence<byte> data)
    {
        if (RawValues.TryRead(data, out T value))
        {
            return value;
        }

        var reader = new Utf8JsonReader(data);
        return JsonSerializer.Deserialize<T>(ref reader, Options)!;
    }

    /// <inheritdoc />
    internal override bool WritesRawValues => true;

    private void WriteJson<T>(IBufferWriter<byte> writer, T value)
    {
        // One writer per thread, reset onto each output; a converter that serializes again on the same
        // thread while it is in use gets a writer of its own.
        Utf8JsonWriter? json = t_writer;
        t_writer = null;
        if (json is null)
        {
            json = new Utf8JsonWriter(writer);
        }
        else
        {
            json.Reset(writer);
        }

        try
        {
            JsonSerializer.Serialize(json, value, Options);
            json.Flush();
        }
        finally
        {
            json.Reset(NullBufferWriter.Instance);
            t_writer = json;
        }
    }

    private sealed class NullBufferWriter : IBufferWriter<byte>
    {
        public static readonly NullBufferWriter Instance = new();

        public void Advance(int count)
        {
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => Memory<byte>.Empty;

        public Span<byte> GetSpan(int sizeHint = 0) => Span<byte>.Empty;
    }
}
