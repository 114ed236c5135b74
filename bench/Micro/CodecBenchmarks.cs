using System.Buffers;
using BenchmarkDotNet.Attributes;
using Pool.Contracts;

namespace Pool.Bench.Micro;

/// <summary>
/// The default serializer's codecs (Pool.Contracts <see cref="CodecProvider"/>, <see cref="Codec{T}"/>):
/// one value written into a frame buffer and read back, for an int (raw), a short string (UTF-8), a small record
/// (MessagePack) and a 1 MiB double[] (raw array).
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private readonly FrameWriter _writer = new();
    private readonly CodecProvider _codecs = new(PoolSerializer.Default);
    private readonly SmallRecord _record = new(42, 3.25, "forty-two");
    private readonly double[] _doubles = [.. Enumerable.Range(0, (1 << 20) / sizeof(double)).Select(i => i * 0.5)];
    private Codec<int> _int = null!;
    private Codec<string> _string = null!;
    private Codec<SmallRecord> _recordCodec = null!;
    private Codec<double[]> _doublesCodec = null!;

    [GlobalSetup]
    public void Setup()
    {
        _int = _codecs.Get<int>();
        _string = _codecs.Get<string>();
        _recordCodec = _codecs.Get<SmallRecord>();
        _doublesCodec = _codecs.Get<double[]>();
    }

    [GlobalCleanup]
    public void Cleanup() => _writer.Dispose();

    [Benchmark]
    public int RawInt() => RoundTrip(_int, 12345);

    [Benchmark]
    public string ShortString() => RoundTrip(_string, "hello from a worker");

    [Benchmark]
    public SmallRecord Record() => RoundTrip(_recordCodec, _record);

    [Benchmark]
    public double[] DoubleArray1MiB() => RoundTrip(_doublesCodec, _doubles);

    private T RoundTrip<T>(Codec<T> codec, T value)
    {
        _writer.Reset();
        codec.Write(_writer, value);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_writer.WrittenMemory));
        return codec.Read(ref reader);
    }
}

/// <summary>A small record, as a typical argument that travels as MessagePack.</summary>
public sealed record SmallRecord(int Id, double Value, string Name);
