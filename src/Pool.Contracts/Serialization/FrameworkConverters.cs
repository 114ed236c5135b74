using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pool.Contracts;

/// <summary>
/// Converters for framework types that System.Text.Json writes without error but reads back wrong:
/// <see cref="BigInteger"/> and <see cref="Complex"/> (read as zero: their public properties are read-only),
/// <see cref="Stack{T}"/> and <see cref="ConcurrentStack{T}"/> (read reversed: written top first, pushed in that order).
/// </summary>
internal static class FrameworkConverters
{
    public static readonly JsonConverter[] All = [new BigIntegerConverter(), new ComplexConverter(), new StackConverterFactory()];

    /// <summary>A <see cref="BigInteger"/> as a JSON number of any length.</summary>
    private sealed class BigIntegerConverter : JsonConverter<BigInteger>
    {
        public override BigInteger Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType is not (JsonTokenType.Number or JsonTokenType.String))
            {
                throw new JsonException($"Expected a number for a BigInteger, got {reader.TokenType}.");
            }

            string digits = reader.TokenType == JsonTokenType.String ? reader.GetString()! :
                reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence) : Encoding.UTF8.GetString(reader.ValueSpan);
            return BigInteger.Parse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }

        public override void Write(Utf8JsonWriter writer, BigInteger value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.ToString(CultureInfo.InvariantCulture), skipInputValidation: true);
    }

    /// <summary>A <see cref="Complex"/> as <c>[real, imaginary]</c>.</summary>
    private sealed class ComplexConverter : JsonConverter<Complex>
    {
        public override Complex Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            double[]? parts = JsonSerializer.Deserialize<double[]>(ref reader, options);
            return parts is { Length: 2 } ? new Complex(parts[0], parts[1]) : throw new JsonException("Expected [real, imaginary] for a Complex.");
        }

        public override void Write(Utf8JsonWriter writer, Complex value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, new[] { value.Real, value.Imaginary }, options);
    }

    /// <summary>Stacks written top first, as System.Text.Json does, and read back in that order.</summary>
    private sealed class StackConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) =>
            typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() is { } definition &&
            (definition == typeof(Stack<>) || definition == typeof(ConcurrentStack<>));

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options)
        {
            Type element = typeToConvert.GetGenericArguments()[0];
            Type converter = typeToConvert.GetGenericTypeDefinition() == typeof(Stack<>)
                ? typeof(StackConverter<>).MakeGenericType(element)
                : typeof(ConcurrentStackConverter<>).MakeGenericType(element);
            return (JsonConverter)Activator.CreateInstance(converter)!;
        }
    }

    /// <summary>A stack as an array, top first; read back by pushing from the bottom.</summary>
    private abstract class TopFirstConverter<TStack, T> : JsonConverter<TStack>
        where TStack : IEnumerable<T>
    {
        public override TStack? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            T[]? items = JsonSerializer.Deserialize<T[]>(ref reader, options);
            if (items is null)
            {
                return default;
            }

            Array.Reverse(items);
            return Create(items);
        }

        public override void Write(Utf8JsonWriter writer, TStack value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize<IEnumerable<T>>(writer, value, options);

        /// <summary>The stack with <paramref name="bottomFirst"/> pushed in order.</summary>
        protected abstract TStack Create(T[] bottomFirst);
    }

    private sealed class StackConverter<T> : TopFirstConverter<Stack<T>, T>
    {
        protected override Stack<T> Create(T[] bottomFirst) => new(bottomFirst);
    }

    private sealed class ConcurrentStackConverter<T> : TopFirstConverter<ConcurrentStack<T>, T>
    {
        protected override ConcurrentStack<T> Create(T[] bottomFirst) => new(bottomFirst);
    }
}
