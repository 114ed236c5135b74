using System.Buffers;
using System.IO.Pipelines;
using Pool.Contracts;

namespace Pool.Tests.Unit;

public class FramingTests
{
    [Fact]
    public async Task Frames_delivered_one_byte_at_a_time_are_parsed_whole()
    {
        using var writer = new FrameWriter(16);
        for (int i = 0; i < 20; i++)
        {
            writer.BeginFrame(MessageType.Results);
            writer.WriteInt32(i);
            writer.WriteString(new string('x', i * 7));
            writer.EndFrame();
        }

        byte[] bytes = writer.WrittenMemory.ToArray();
        var pipe = new Pipe();
        var received = new List<(MessageType Type, int Number, string Text)>();
        Task reading = Task.Run(async () =>
        {
            while (true)
            {
                ReadResult result = await pipe.Reader.ReadAsync();
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (Framing.TryReadFrame(ref buffer, out MessageType type, out ReadOnlySequence<byte> payload))
                {
                    var reader = new SequenceReader<byte>(payload);
                    received.Add((type, reader.ReadInt32(), reader.ReadRequiredString()));
                }

                pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        });

        foreach (byte b in bytes)
        {
            await pipe.Writer.WriteAsync(new[] { b });
        }

        await pipe.Writer.CompleteAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(10));

        received.Should().HaveCount(20);
        received.Select(r => r.Number).Should().Equal(Enumerable.Range(0, 20));
        received.Should().OnlyContain(r => r.Type == MessageType.Results && r.Text.Length == r.Number * 7);
    }

    [Fact]
    public void A_frame_split_across_segments_is_read_whole()
    {
        using var writer = new FrameWriter();
        writer.BeginFrame(MessageType.Cancel);
        writer.WriteInt64(long.MaxValue);
        writer.EndFrame();
        byte[] bytes = writer.WrittenMemory.ToArray();

        ReadOnlySequence<byte> sequence = Segments.Of(bytes, 3);
        Framing.TryReadFrame(ref sequence, out MessageType type, out ReadOnlySequence<byte> payload).Should().BeTrue();

        type.Should().Be(MessageType.Cancel);
        var reader = new SequenceReader<byte>(payload);
        reader.ReadInt64().Should().Be(long.MaxValue);
        sequence.Length.Should().Be(0);
    }

    [Fact]
    public void An_incomplete_frame_leaves_the_buffer_untouched()
    {
        using var writer = new FrameWriter();
        writer.BeginFrame(MessageType.Run);
        writer.WriteInt32(42);
        writer.EndFrame();
        var sequence = new ReadOnlySequence<byte>(writer.WrittenMemory[..^1]);

        Framing.TryReadFrame(ref sequence, out _, out _).Should().BeFalse();
        sequence.Length.Should().Be(writer.Position - 1);
    }

    [Fact]
    public void A_corrupt_length_is_a_protocol_error()
    {
        var sequence = new ReadOnlySequence<byte>(new byte[] { 0xff, 0xff, 0xff, 0x7f, 5, 0 });
        Action read = () => Framing.TryReadFrame(ref sequence, out _, out _);
        read.Should().Throw<ProtocolException>().WithMessage("*corrupt*");
    }

    [Fact]
    public void An_abandoned_frame_and_a_truncated_value_leave_no_bytes()
    {
        using var writer = new FrameWriter(8);
        writer.BeginFrame(MessageType.Results);
        writer.WriteInt32(1);
        int position = writer.Position;
        writer.WriteString("a value that failed half way");
        writer.Truncate(position);
        writer.EndFrame();
        int afterFirst = writer.Position;
        writer.BeginFrame(MessageType.Run);
        writer.WriteBytes(new byte[100_000]);
        writer.AbandonFrame();

        writer.Position.Should().Be(afterFirst);
        var sequence = new ReadOnlySequence<byte>(writer.WrittenMemory);
        Framing.TryReadFrame(ref sequence, out _, out ReadOnlySequence<byte> payload).Should().BeTrue();
        payload.Length.Should().Be(4);
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(1000)]
    [InlineData(7)]
    public void Arrays_sent_as_blocks_decode_to_the_same_values_as_arrays_copied_inline(int readSize)
    {
        // The same frames, with large arrays among small values, a value rolled back after a block, a patched
        // count and an abandoned frame holding one, written by a copying writer and by one that sends blocks,
        // read back through the reader from a stream that returns at most readSize bytes per read (so a block
        // arrives partly with the frame before it and partly straight from the stream).
        var codecs = new CodecProvider(new JsonPoolSerializer());
        Codec<double[]> arrays = codecs.Get<double[]>();
        Codec<string> strings = codecs.Get<string>();
        Codec<byte[]> byteArrays = codecs.Get<byte[]>();
        double[] large = [.. Enumerable.Range(0, 40_000).Select(i => i * 0.25)];
        byte[] bytes = [.. Enumerable.Range(0, 300_000).Select(i => (byte)i)];

        void Write(FrameWriter writer)
        {
            writer.BeginFrame(MessageType.Results);
            int count = writer.ReserveInt32();
            arrays.Write(writer, large);
            strings.Write(writer, "between");
            int position = writer.Position;
            arrays.Write(writer, large);
            strings.Write(writer, "rolled back");
            writer.Truncate(position);
            byteArrays.Write(writer, bytes);
            arrays.Write(writer, [1.5, 2.5]);
            writer.PatchInt32(count, 3);
            writer.EndFrame();
            writer.BeginFrame(MessageType.Run);
            arrays.Write(writer, large);
            writer.AbandonFrame();
            writer.BeginFrame(MessageType.Results);
            writer.WriteInt32(7);
            arrays.Write(writer, large);
            writer.EndFrame();
        }

        List<object> Read(FrameWriter writer)
        {
            using var wire = new MemoryStream();
            writer.WriteTo(wire);
            wire.Position = 0;
            var values = new List<object>();
            BlockingFrameReader.Run(new TrickleStream(wire, readSize), (type, payload) =>
            {
                var reader = new SequenceReader<byte>(payload);
                int count = reader.ReadInt32();
                values.Add(count);
                if (count == 3)
                {
                    values.Add(arrays.Read(ref reader));
                    values.Add(strings.Read(ref reader));
                    values.Add(byteArrays.Read(ref reader));
                    values.Add(arrays.Read(ref reader));
                }
                else
                {
                    values.Add(arrays.Read(ref reader));
                }

                reader.Remaining.Should().Be(0);
            });
            return values;
        }

        using var copying = new FrameWriter();
        using var blocks = new FrameWriter(sendBlocks: true);
        Write(copying);
        Write(blocks);

        blocks.HasBlocks.Should().BeTrue();
        blocks.Position.Should().BeLessThan(1000, "the large arrays are not in the frames");
        blocks.Length.Should().Be(copying.Length + (3 * FrameWriter.BlockHeaderSize), "three blocks are sent, each with its header");
        List<object> expected = Read(copying);
        Read(blocks).Should().BeEquivalentTo(expected, o => o.WithStrictOrdering());
        expected.Should().HaveCount(7);
    }

    [Fact]
    public void A_block_that_its_frame_does_not_take_is_dropped_with_the_frame()
    {
        using var writer = new FrameWriter(sendBlocks: true);
        Codec<int[]> arrays = new CodecProvider(new JsonPoolSerializer()).Get<int[]>();
        writer.BeginFrame(MessageType.Run);
        arrays.Write(writer, new int[100_000]);
        writer.EndFrame();
        writer.BeginFrame(MessageType.Run);
        arrays.Write(writer, [.. Enumerable.Range(0, 100_000)]);
        writer.EndFrame();
        using var wire = new MemoryStream();
        writer.WriteTo(wire);
        wire.Position = 0;

        var taken = new List<int[]>();
        int frames = 0;
        BlockingFrameReader.Run(wire, (_, payload) =>
        {
            // The first frame ignores its value (a chunk whose function failed to bind is never decoded).
            if (frames++ == 1)
            {
                var reader = new SequenceReader<byte>(payload);
                taken.Add(arrays.Read(ref reader));
            }
        });

        frames.Should().Be(2);
        taken.Single().Should().Equal(Enumerable.Range(0, 100_000));
        FluentActions.Invoking(ReceivedBlocks.Take<int>).Should().Throw<ProtocolException>().WithMessage("*did not arrive*");
    }

    [Fact]
    public void Arrays_are_copied_inline_when_small_of_an_enum_type_or_outside_a_frame()
    {
        using var writer = new FrameWriter(sendBlocks: true);
        writer.TryWriteBlock(new byte[FrameWriter.LargeBlock - 1]).Should().BeFalse("it is small");
        writer.TryWriteBlock(new byte[FrameWriter.LargeBlock]).Should().BeFalse("no frame is open");
        writer.BeginFrame(MessageType.Run);
        writer.TryWriteBlock(new DayOfWeek[FrameWriter.LargeBlock]).Should().BeFalse("a reader could not name an enum type from a code");
        writer.TryWriteBlock(new Guid[FrameWriter.LargeBlock / 16]).Should().BeTrue();
        using var copying = new FrameWriter();
        copying.BeginFrame(MessageType.Run);
        copying.TryWriteBlock(new byte[FrameWriter.LargeBlock]).Should().BeFalse("this writer copies");
    }

    [Fact]
    public void Messages_round_trip()
    {
        using var writer = new FrameWriter();
        var error = RemoteError.FromException(new AggregateException("many", new ArgumentException("a"), new InvalidOperationException("b", new FormatException("c"))));
        new FailedMessage(7, 3, 2, FailureKind.Error, error).Write(writer);
        var descriptor = new FunctionDescriptor("Asm, Version=1.0.0.0", "/x/Asm.dll", Guid.NewGuid(), 0x06000001, "T, Asm", "M", ["System.Int32"], "System.Func`2", TargetKind.Singleton, null, [1, 2, 3], "T.M(int)");
        new BindMessage(5, descriptor).Write(writer);
        new InitMessage(2, "Pool.JsonPoolSerializer", descriptor, [9, 9], 4).Write(writer);

        var sequence = new ReadOnlySequence<byte>(writer.WrittenMemory);
        Framing.TryReadFrame(ref sequence, out _, out ReadOnlySequence<byte> failedPayload).Should().BeTrue();
        FailedMessage failed = FailedMessage.Read(failedPayload);
        failed.Should().BeEquivalentTo(new { ChunkId = 7, Offset = 3, Count = 2, Kind = FailureKind.Error });
        failed.Error!.TypeName.Should().Be("System.AggregateException");
        failed.Error.InnerErrors.Should().HaveCount(2);
        failed.Error.InnerErrors[1].InnerErrors[0].Message.Should().Be("c");

        Framing.TryReadFrame(ref sequence, out _, out ReadOnlySequence<byte> bindPayload).Should().BeTrue();
        BindMessage bind = BindMessage.Read(bindPayload);
        bind.FunctionId.Should().Be(5);
        bind.Function.Should().BeEquivalentTo(descriptor);

        Framing.TryReadFrame(ref sequence, out _, out ReadOnlySequence<byte> initPayload).Should().BeTrue();
        InitMessage init = InitMessage.Read(initPayload);
        init.Should().BeEquivalentTo(new InitMessage(2, "Pool.JsonPoolSerializer", descriptor, [9, 9], 4));
    }
}

/// <summary>Builds multi-segment sequences.</summary>
internal sealed class Segments : ReadOnlySequenceSegment<byte>
{
    private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Of(byte[] bytes, int segmentSize)
    {
        var first = new Segments(bytes.AsMemory(0, Math.Min(segmentSize, bytes.Length)), 0);
        Segments last = first;
        for (int offset = segmentSize; offset < bytes.Length; offset += segmentSize)
        {
            var next = new Segments(bytes.AsMemory(offset, Math.Min(segmentSize, bytes.Length - offset)), offset);
            last.Next = next;
            last = next;
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}

/// <summary>A stream that returns at most a given number of bytes per read, as a pipe under load does.</summary>
internal sealed class TrickleStream(Stream inner, int readSize) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, readSize));

    public override int Read(Span<byte> buffer) => inner.Read(buffer[..Math.Min(buffer.Length, readSize)]);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
