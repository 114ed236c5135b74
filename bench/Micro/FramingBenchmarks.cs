using System.Buffers;
using BenchmarkDotNet.Attributes;
using Pool.Contracts;

namespace Pool.Bench.Micro;

/// <summary>
/// Framing (Pool.Contracts): writing a frame into a <see cref="FrameWriter"/>, and taking 64 frames off a
/// buffer with <see cref="Framing.TryReadFrame"/>, contiguous or cut in 4 KiB segments as a pipe delivers them.
/// </summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private const int Frames = 64;

    private FrameWriter _writer = null!;
    private byte[] _payload = [];
    private ReadOnlySequence<byte> _contiguous;
    private ReadOnlySequence<byte> _segmented;

    [Params(16, 64 * 1024)]
    public int PayloadBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _writer = new FrameWriter();
        _payload = [.. Enumerable.Range(0, PayloadBytes).Select(i => (byte)i)];
        for (int i = 0; i < Frames; i++)
        {
            _writer.BeginFrame(MessageType.Results);
            _writer.WriteBytes(_payload);
            _writer.EndFrame();
        }

        byte[] stream = _writer.WrittenMemory.ToArray();
        _contiguous = new ReadOnlySequence<byte>(stream);
        _segmented = Segments.Split(stream, 4096);
        _writer.Reset();
    }

    [GlobalCleanup]
    public void Cleanup() => _writer.Dispose();

    [Benchmark]
    public int WriteFrame()
    {
        _writer.Reset();
        _writer.BeginFrame(MessageType.Run);
        _writer.WriteBytes(_payload);
        _writer.EndFrame();
        return _writer.Position;
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public long ReadFramesContiguous() => ReadAll(_contiguous);

    [Benchmark(OperationsPerInvoke = Frames)]
    public long ReadFramesSegmented() => ReadAll(_segmented);

    private static long ReadAll(ReadOnlySequence<byte> buffer)
    {
        long total = 0;
        while (Framing.TryReadFrame(ref buffer, out MessageType _, out ReadOnlySequence<byte> payload))
        {
            total += payload.Length;
        }

        return total;
    }
}

/// <summary>A byte array cut into a chain of segments, as a PipeReader hands out a long message.</summary>
internal sealed class Segments : ReadOnlySequenceSegment<byte>
{
    private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Split(byte[] bytes, int size)
    {
        var first = new Segments(bytes.AsMemory(0, Math.Min(size, bytes.Length)), 0);
        Segments last = first;
        for (int offset = size; offset < bytes.Length; offset += size)
        {
            var next = new Segments(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)), offset);
            last.Next = next;
            last = next;
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
