using System.Buffers;
using MessagePack;
using Pool.Contracts;

namespace Pool.Tests.Unit;

public class CodecTests
{
    private readonly CodecProvider _codecs = new(new JsonPoolSerializer());

    public enum Color
    {
        Red,
        Green,
    }

    [Fact]
    public void Primitives_travel_as_raw_fixed_size_values()
    {
        _codecs.Get<int>().FixedSize.Should().Be(4);
        _codecs.Get<double>().FixedSize.Should().Be(8);
        _codecs.Get<Color>().FixedSize.Should().Be(4);
        _codecs.Get<Guid>().FixedSize.Should().Be(16);
        _codecs.Get<string>().FixedSize.Should().Be(-1);
        _codecs.Get<nint>().FixedSize.Should().Be(-1, "a pointer's bytes mean nothing in another process");

        RoundTrip(123).Should().Be(123);
        RoundTrip(double.NaN).Should().Be(double.NaN);
        RoundTrip(Color.Green).Should().Be(Color.Green);
        RoundTrip(new DateTime(2026, 11, 21, 1, 2, 3, DateTimeKind.Utc)).Kind.Should().Be(DateTimeKind.Utc);
        RoundTrip(decimal.MaxValue).Should().Be(decimal.MaxValue);
    }

    [Fact]
    public void Strings_arrays_records_tuples_and_collections_round_trip()
    {
        RoundTrip("héllo ✓").Should().Be("héllo ✓");
        RoundTrip<string?>(null).Should().BeNull();
        RoundTrip(string.Empty).Should().BeEmpty();
        RoundTrip(new[] { 1.5, double.PositiveInfinity, -0.0 }).Should().Equal(1.5, double.PositiveInfinity, -0.0);
        RoundTrip(new byte[] { 1, 2, 3 }).Should().Equal(1, 2, 3);
        RoundTrip(new Point(1, double.NaN)).Should().Be(new Point(1, double.NaN));
        RoundTrip((3, "three")).Should().Be((3, "three"));
        RoundTrip(new List<string> { "a", "b" }).Should().Equal("a", "b");
        RoundTrip(new Dictionary<string, int> { ["x"] = 1 }).Should().ContainKey("x").WhoseValue.Should().Be(1);
        RoundTrip<int?>(null).Should().BeNull();
        RoundTrip<int?>(5).Should().Be(5);
    }

    [Fact]
    public void A_chunk_of_raw_values_is_one_block_of_bytes()
    {
        using var writer = new FrameWriter();
        _codecs.Get<int>().WriteMany(writer, new[] { 1, 2, 3 });
        writer.Position.Should().Be(12);

        var reader = new SequenceReader<byte>(Segments.Of(writer.WrittenMemory.ToArray(), 5));
        var values = new int[3];
        _codecs.Get<int>().ReadMany(ref reader, values);
        values.Should().Equal(1, 2, 3);
    }

    [Fact]
    public void An_argument_that_fails_to_decode_does_not_desynchronise_the_next()
    {
        var args = new Args2<Point, int>(_codecs.Get<Point>(), _codecs.Get<int>());
        using var writer = new FrameWriter();
        int position = writer.ReserveInt32();
        writer.WriteBytes("{not json"u8);
        writer.PatchInt32(position, writer.Position - position - 4);
        writer.WriteInt32(17);
        args.Write(writer, (new Point(1, 2), 18));

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(writer.WrittenMemory));
        Action first = () => ReadOne(args, writer.WrittenMemory, out _);
        first.Should().Throw<System.Text.Json.JsonException>();
        ReadOne(args, writer.WrittenMemory, out int consumed, skip: 1).Should().Be((new Point(1, 2), 18));
        consumed.Should().Be(writer.Position);
    }

    [Fact]
    public void A_custom_serializer_sees_every_value()
    {
        var codecs = new CodecProvider(new CountingSerializer());
        codecs.Get<int>().FixedSize.Should().Be(-1);
        using var writer = new FrameWriter();
        codecs.Get<int>().Write(writer, 5);
        CountingSerializer.Calls.Should().BeGreaterThan(0);
    }

    private static (Point, int) ReadOne(Args2<Point, int> args, ReadOnlyMemory<byte> bytes, out int consumed, int skip = 0)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        for (int i = 0; i < skip; i++)
        {
            try
            {
                args.Read(ref reader);
            }
            catch (System.Text.Json.JsonException)
            {
                // The first task's argument is broken on purpose.
            }
        }

        (Point, int) value = args.Read(ref reader);
        consumed = (int)reader.Consumed;
        return value;
    }

    [Fact]
    public void The_default_serializers_records_go_straight_to_their_formatter_in_frames_of_any_shape_and_fail_as_explained()
    {
        var codecs = new CodecProvider(new MessagePackPoolSerializer());
        Codec<Reading> codec = codecs.Get<Reading>();
        codec.Should().BeOfType<MessagePackCodec<Reading>>();
        codecs.Get<string>().Should().BeOfType<StringCodec>("strings are raw UTF-8");

        using var writer = new FrameWriter(4);
        Reading[] readings = [new(1, 2.5, "a"), null!, new(3, double.NaN, "ünï")];
        foreach (Reading value in readings)
        {
            codec.Write(writer, value);
        }

        // Split into 3-byte segments: a value that spans segments reads as one in one piece.
        var reader = new SequenceReader<byte>(Segments.Of(writer.WrittenMemory.ToArray(), 3));
        Reading[] back = [codec.Read(ref reader), codec.Read(ref reader), codec.Read(ref reader)];
        back.Should().Equal(readings);
        reader.Remaining.Should().Be(0);

        var broken = new SequenceReader<byte>(new ReadOnlySequence<byte>([3, 0, 0, 0, 0xc1, 0xc1, 0xc1]));
        Reading Read(ref SequenceReader<byte> r) => codec.Read(ref r);
        Exception? error = null;
        try
        {
            Read(ref broken);
        }
        catch (MessagePackSerializationException e)
        {
            error = e;
        }

        error.Should().NotBeNull().And.Subject.As<Exception>().Message.Should().StartWith("MessagePack cannot read a Pool.Tests.Unit.CodecTests.Reading");
        broken.Remaining.Should().Be(0, "the value is read past even when it fails");
    }

    public sealed record Reading(int Id, double Value, string Label);

    private T RoundTrip<T>(T value)
    {
        Codec<T> codec = _codecs.Get<T>();
        using var writer = new FrameWriter(4);
        codec.Write(writer, value);
        var reader = new SequenceReader<byte>(Segments.Of(writer.WrittenMemory.ToArray(), 3));
        T result = codec.Read(ref reader);
        reader.Remaining.Should().Be(0);
        return result;
    }

    private sealed class CountingSerializer : PoolSerializer
    {
        public static int Calls;

        public override void Serialize<T>(IBufferWriter<byte> writer, T value)
        {
            Interlocked.Increment(ref Calls);
            PoolSerializer.Default.Serialize(writer, value);
        }

        public override T Deserialize<T>(ReadOnlySequence<byte> data) => PoolSerializer.Default.Deserialize<T>(data);
    }

    /// <summary>
    /// A string needs no write-and-read-back check at the call (a 10 MB argument cost three times its sending): whole
    /// UTF-16 arrives as it was, and a lone surrogate is refused by Validate, before anything is written, and where it
    /// is written. A string in several buffers (a large one) reads back whole.
    /// </summary>
    [Fact]
    public void Strings_are_checked_without_a_round_trip_and_read_back_from_pieces()
    {
        foreach (PoolSerializer serializer in new PoolSerializer[] { new MessagePackPoolSerializer(), new JsonPoolSerializer() })
        {
            Codec<string> codec = new CodecProvider(serializer).Get<string>();
            codec.CanFail.Should().BeFalse();
            codec.Invoking(c => c.Validate("a\ud800b")).Should().Throw<ArgumentException>().WithMessage("*lone surrogate (\\uD800) at index 1*");
            codec.Invoking(c => c.Validate("whole: é€😀")).Should().NotThrow();

            string text = string.Concat(Enumerable.Repeat("é€😀 text ", 20_000));
            using var writer = new FrameWriter(4);
            codec.Write(writer, text);
            codec.Write(writer, null!);
            byte[] bytes = writer.WrittenMemory.ToArray();
            // In buffers of 1,001 bytes: cuts inside characters.
            ReadOnlySequence<byte> pieces = Segments.Of(bytes, 1001);
            var reader = new SequenceReader<byte>(pieces);
            codec.Read(ref reader).Should().Be(text);
            codec.Read(ref reader).Should().BeNull();
            reader.End.Should().BeTrue();
        }
    }
}
