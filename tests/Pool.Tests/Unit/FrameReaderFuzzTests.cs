using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Pool.Contracts;

namespace Pool.Tests.Unit;

/// <summary>
/// The host's frame reader fed seeded random streams: valid frames and blocks, mutated ones (flipped bytes, forged
/// lengths, cut-off ends, garbage), in reads of random sizes. It may only return at the end of a stream or throw
/// <see cref="ProtocolException"/>, and it never allocates beyond the documented bounds. 100,000 frames in the normal
/// run; for a longer one: <c>POOL_FUZZ_FRAMES=1000000 dotnet test --filter FrameReaderFuzz</c>.
/// </summary>
public class FrameReaderFuzzTests
{
    // What the guard lets a block be in this test, and the largest single read the reader asks for.
    private const int BlockBound = 64 * 1024;
    private const int LargeReadSize = 4 * 1024 * 1024;
    private const int FramesPerStream = 50;

    [Fact]
    public void FrameReaderFuzz_ends_every_stream_at_its_end_or_with_a_protocol_error_within_the_allocation_bound()
    {
        int frames = int.TryParse(Environment.GetEnvironmentVariable("POOL_FUZZ_FRAMES"), out int asked) ? asked : 100_000;
        var random = new Random(20261202);
        var guard = new CountingGuard();
        int ended = 0;
        int refused = 0;
        long handled = 0;
        Stopwatch clock = Stopwatch.StartNew();
        for (int stream = 0; stream * FramesPerStream < frames; stream++)
        {
            byte[] bytes = NewStream(random);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                BlockingFrameReader.Run(new ChoppyStream(bytes, random.Next()), (_, payload) => handled += payload.Length, guard);
                ended++;
            }
            catch (ProtocolException)
            {
                refused++;
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            allocated.Should().BeLessThan((4L * bytes.Length) + BlockBound + (2L * LargeReadSize), $"stream {stream} of {bytes.Length} bytes");
        }

        clock.Stop();
        ended.Should().BeGreaterThan(0);
        refused.Should().BeGreaterThan(0);
        if (frames <= 100_000)
        {
            clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Up to <see cref="FramesPerStream"/> frames, about half of the streams with one mutation.</summary>
    private static byte[] NewStream(Random random)
    {
        var output = new ArrayBufferWriter<byte>();
        for (int i = 0; i < FramesPerStream; i++)
        {
            if (random.Next(8) == 0)
            {
                WriteBlock(output, random);
            }
            else
            {
                WriteFrame(output, random);
            }
        }

        byte[] bytes = output.WrittenSpan.ToArray();
        switch (random.Next(8))
        {
            case 0:
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                // A forged length at a random place, possibly huge.
                int at = random.Next(Math.Max(1, bytes.Length - 4));
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)random.NextInt64(0, 1L << 32));
                break;
            case 2:
                Array.Resize(ref bytes, random.Next(bytes.Length));
                break;
            case 3:
                random.NextBytes(bytes.AsSpan(random.Next(bytes.Length)));
                break;
        }

        return bytes;
    }

    private static void WriteFrame(ArrayBufferWriter<byte> output, Random random)
    {
        int length = random.Next(0, 300);
        Span<byte> frame = output.GetSpan(5 + length)[..(5 + length)];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(1 + length));
        frame[4] = (byte)random.Next(1, 12 - 1);
        random.NextBytes(frame[5..]);
        output.Advance(frame.Length);
    }

    private static void WriteBlock(ArrayBufferWriter<byte> output, Random random)
    {
        int length = random.Next(0, 512) * 16;
        Span<byte> frame = output.GetSpan(6 + length)[..(6 + length)];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(2 + length));
        frame[4] = (byte)MessageType.Block;
        frame[5] = (byte)random.Next(0, 25);
        random.NextBytes(frame[6..]);
        output.Advance(frame.Length);
    }

    /// <summary>Lets blocks up to <see cref="BlockBound"/> through, as a host whose task returns arrays would; counts frames in pieces.</summary>
    private sealed class CountingGuard : IFrameGuard
    {
        public void OnFrameStarted(long length)
        {
        }

        public void OnFrameCompleted()
        {
        }

        public void CheckBlock(byte code, int length)
        {
            if (length > BlockBound)
            {
                throw new ProtocolException($"a block of {length} bytes is more than this test's bound");
            }
        }
    }

    /// <summary>A stream that hands out its bytes in reads of random sizes, as a socket does.</summary>
    private sealed class ChoppyStream(byte[] bytes, int seed) : Stream
    {
        private readonly Random _random = new(seed);
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => bytes.Length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            int count = Math.Min(Math.Min(buffer.Length, bytes.Length - _position), 1 + _random.Next(700));
            bytes.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
