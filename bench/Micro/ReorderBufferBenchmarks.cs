using BenchmarkDotNet.Attributes;
using Pool.Internal;

namespace Pool.Bench.Micro;

/// <summary>
/// The ring behind <c>Imap</c> (Pool.Host <see cref="ReorderBuffer{T}"/>): outcomes put in order and taken at
/// once, and put in swapped pairs (1, 0, 3, 2, ...) as two workers deliver them, per outcome.
/// </summary>
[MemoryDiagnoser]
public class ReorderBufferBenchmarks
{
    private const int Count = 4096;

    // One buffer for every invocation: task indexes keep growing, as in a long Imap.
    private readonly ReorderBuffer<int> _buffer = new();

    [Benchmark(OperationsPerInvoke = Count)]
    public long InOrder()
    {
        long sum = 0;
        long start = _buffer.Next;
        for (long i = start; i < start + Count; i++)
        {
            _buffer.Put(new Outcome<int>(i, (int)i));
            while (_buffer.TryTake(out Outcome<int> outcome))
            {
                sum += outcome.Value;
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Count)]
    public long SwappedPairs()
    {
        long sum = 0;
        long start = _buffer.Next;
        for (long i = start; i < start + Count; i += 2)
        {
            _buffer.Put(new Outcome<int>(i + 1, (int)i + 1));
            _buffer.Put(new Outcome<int>(i, (int)i));
            while (_buffer.TryTake(out Outcome<int> outcome))
            {
                sum += outcome.Value;
            }
        }

        return sum;
    }
}
