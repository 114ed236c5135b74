using System.Buffers;
using Pool.Contracts;

namespace Pool.Bench.Workloads;

/// <summary>
/// W11, records: <c>Map</c> over 100,000 small records (an <c>int</c>, a <c>double</c>, a <c>string</c>) returning a
/// record, in tasks/s, and 10,000 sequential <c>Apply</c> with a record argument (1,000 under --quick), in µs per call.
/// The default serializer (MessagePack) and <see cref="JsonPoolSerializer"/> are measured in turn, repetition by
/// repetition (<see cref="Measure.AlternatingAll"/>), each on its own warmed pool, with a plain loop in the host building the same
/// results (<c>Array.ConvertAll</c>, one thread): most of a map's time in the host is allocating and keeping 100,000 result
/// objects, which every serializer pays. mp.Pool (pickle) is the Python reference. A second row is the codec alone: the
/// host reading the map's 100,000 results from one buffer into a new array (<see cref="Codec{T}.ReadMany"/>, one thread,
/// no pool), MessagePack and JSON in turn, which is what reading them costs wherever they come from: a map whose host
/// is busy reading its results can be no more than this much faster with MessagePack than with JSON.
/// </summary>
internal static class W11Records
{
    private const string Id = "W11";

    public static void Run(BenchContext context)
    {
        Sample[] samples = [.. Enumerable.Range(0, 100_000).Select(Sample.Of)];
        int calls = context.Pick(10_000, 1_000);
        context.Note(Id, $"{samples.Length:N0} records per map; {calls:N0} calls per Apply repetition; ProcessPool is MessagePack (the default), JsonPoolSerializer a pool of its own");

        using var messagePack = new ProcessPool(context.PoolOptions());
        using var json = new ProcessPool(context.PoolOptions() with { Serializer = new JsonPoolSerializer() });
        Check(messagePack.Map(Functions.Score, samples));
        Check(json.Map(Functions.Score, samples));

        Stats[] maps = Measure.AlternatingAll(
            context.Reps,
            [
                () => Measure.Rate(samples.Length, () => messagePack.Map(Functions.Score, samples)),
                () => Measure.Rate(samples.Length, () => json.Map(Functions.Score, samples)),
                () => Measure.Rate(samples.Length, () => Array.ConvertAll(samples, Functions.Score)),
            ]);
        context.Add(Id, "Map, records", Impls.ProcessPool, Units.TasksPerSecond, maps[0], "MessagePack");
        context.Add(Id, "Map, records", Impls.Json, Units.TasksPerSecond, maps[1]);
        context.Add(Id, "Map, records", Impls.Serial, Units.TasksPerSecond, maps[2], "a plain loop in the host building the same 100,000 results: what keeping them costs");

        Scored[] results = Array.ConvertAll(samples, Functions.Score);
        using Encoded packedResults = Encoded.Of(PoolSerializer.Default, results);
        using Encoded textResults = Encoded.Of(new JsonPoolSerializer(), results);
        Stats[] reads = Measure.AlternatingAll(
            context.Reps,
            [
                () => Measure.Rate(results.Length, () => packedResults.Read()),
                () => Measure.Rate(results.Length, () => textResults.Read()),
            ]);
        context.Add(Id, "Map's results read in the host, one thread", Impls.ProcessPool, Units.TasksPerSecond, reads[0], "the default codec (MessagePack) alone, no pool: 100,000 results read from one buffer into a new array");
        context.Add(Id, "Map's results read in the host, one thread", Impls.Json, Units.TasksPerSecond, reads[1]);

        (Stats packed, Stats text) = Measure.Alternating(context.Reps, () => Calls(messagePack, samples, calls), () => Calls(json, samples, calls));
        context.Add(Id, "sequential Apply, record", Impls.ProcessPool, Units.Microseconds, packed, "MessagePack");
        context.Add(Id, "sequential Apply, record", Impls.Json, Units.Microseconds, text);
    }

    private static double Calls(ProcessPool pool, Sample[] samples, int calls)
    {
        TimeSpan elapsed = Measure.Time(() =>
        {
            for (int i = 0; i < calls; i++)
            {
                if (pool.Apply(Functions.Score, samples[i]).Id != i)
                {
                    throw new InvalidOperationException($"Apply returned a wrong record for {i}.");
                }
            }
        });
        return elapsed.TotalMicroseconds / calls;
    }

    /// <summary>Results written by a serializer's codec into one buffer, as a worker frames them, to be read back whole.</summary>
    private sealed class Encoded : IDisposable
    {
        private readonly FrameWriter _writer = new();
        private Codec<Scored> _codec = null!;
        private int _count;

        public static Encoded Of(PoolSerializer serializer, Scored[] results)
        {
            var encoded = new Encoded { _codec = new CodecProvider(serializer).Get<Scored>(), _count = results.Length };
            foreach (Scored result in results)
            {
                encoded._codec.Write(encoded._writer, result);
            }

            Check(encoded.Read());
            return encoded;
        }

        public Scored[] Read()
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_writer.WrittenMemory));
            var results = new Scored[_count];
            _codec.ReadMany(ref reader, results);
            return results;
        }

        public void Dispose() => _writer.Dispose();
    }

    private static void Check(Scored[] results)
    {
        for (int i = 0; i < results.Length; i++)
        {
            if (results[i] != Functions.Score(Sample.Of(i)))
            {
                throw new InvalidOperationException($"Map returned {results[i]} at {i}.");
            }
        }
    }
}
