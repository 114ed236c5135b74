using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using MessagePack;
using MessagePack.Formatters;

namespace Pool.Tests.Shipping;

/// <summary>A user object whose method is shipped: private readonly state, and a constructor no serializer could call.</summary>
public sealed class Scorer(double[] weights, string name)
{
    private readonly double[] _weights = weights;

    public string Name { get; } = name;

    public double Score(double[] features)
    {
        double sum = 0;
        for (int i = 0; i < features.Length; i++)
        {
            sum += features[i] * _weights[i];
        }

        return sum;
    }

    public string Describe(int x) => $"{Name}:{x}:{Environment.ProcessId}";
}

/// <summary>Private state in a base class: copied too.</summary>
public abstract class Model
{
    private readonly int _bias;

    protected Model(int bias) => _bias = bias;

    public int Predict(int x) => Apply(x) + _bias;

    protected abstract int Apply(int x);
}

public sealed class Doubler(int bias) : Model(bias)
{
    protected override int Apply(int x) => 2 * x;
}

/// <summary>Lambdas and local functions that capture <c>this</c>.</summary>
public sealed class Pricing(double rate)
{
    private readonly double _rate = rate;

    public double Fee { get; init; }

    public double[] PriceAll(ProcessPool pool, double[] amounts) => pool.Map(x => (x * _rate) + Fee, amounts);

    public double[] PriceWithLocalFunction(ProcessPool pool, double[] amounts)
    {
        double discount = 0.5;
        return pool.Map(Price, amounts);

        double Price(double x) => (x * _rate) - discount;
    }
}

/// <summary>A user object with a field that never ships.</summary>
public sealed class StreamLogger(string prefix)
{
    private readonly MemoryStream _sink = new();

    public string Tag(int x) => $"{prefix}{x}";

    public long Written => _sink.Length;
}

/// <summary>The same, with the field marked to stay home.</summary>
public sealed class SkippingLogger(string prefix)
{
    [NonSerialized]
    private readonly MemoryStream? _sink = new();

    public string Tag(int x) => $"{prefix}{x}:{(_sink is null ? "no sink" : "sink")}";
}

/// <summary>A lambda that captures <c>this</c> of an object holding a stream.</summary>
public sealed class Report(int scale)
{
    private readonly Stream _output = new MemoryStream();

    public int[] Scale(ProcessPool pool, int[] values) => pool.Map(x => x * scale, values);

    public long Length => _output.Length;
}

/// <summary>A type no serializer can rebuild: its constructor's parameter matches no property. As a target it is copied field by field.</summary>
public sealed class Unbindable(int seed)
{
    public int Value { get; } = seed * 2;
}

/// <summary>A value whose serialization is counted, to see how often a target travels.</summary>
[JsonConverter(typeof(CountingConverter))]
[MessagePackFormatter(typeof(CountingFormatter))]
public sealed class Counted
{
    public int Value { get; init; }
}

public sealed class CountingConverter : JsonConverter<Counted>
{
    private static int s_writes;
    private static int s_reads;

    public static int Writes => Volatile.Read(ref s_writes);

    public static int Reads => Volatile.Read(ref s_reads);

    public static void CountWrite() => Interlocked.Increment(ref s_writes);

    public static void CountRead() => Interlocked.Increment(ref s_reads);

    public override Counted Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        CountRead();
        return new Counted { Value = reader.GetInt32() };
    }

    public override void Write(Utf8JsonWriter writer, Counted value, JsonSerializerOptions options)
    {
        CountWrite();
        writer.WriteNumberValue(value.Value);
    }
}

/// <summary>The same count, for MessagePack (the default serializer).</summary>
public sealed class CountingFormatter : IMessagePackFormatter<Counted>
{
    public void Serialize(ref MessagePackWriter writer, Counted value, MessagePackSerializerOptions options)
    {
        CountingConverter.CountWrite();
        writer.Write(value.Value);
    }

    public Counted Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        CountingConverter.CountRead();
        return new Counted { Value = reader.ReadInt32() };
    }
}

/// <summary>Generic methods, shipped closed over their type arguments.</summary>
public static class Generic
{
    public static (T, T) Pair<T>(T x) => (x, x);

    public static T[] Repeat<T>(ProcessPool pool, T value, int[] counts) => pool.Map(n => n > 0 ? value : default!, counts);
}

/// <summary>A method of a generic class, shipped with its class's type arguments.</summary>
public static class Box<T>
{
#pragma warning disable CA1000 // A static method of a generic class is the case under test.
    public static T[] Twice(T x) => [x, x];
#pragma warning restore CA1000
}

/// <summary>A method called through a delegate type other than the Func of its own signature.</summary>
public static class Widened
{
    public static int Length(object value) => value.ToString()!.Length;
}

/// <summary>Internal types ship like public ones.</summary>
internal static class InternalMath
{
    internal static int Triple(int x) => 3 * x;
}

/// <summary>Async functions as method groups.</summary>
public static class AsyncFunctions
{
    public static async Task<int> SquareLaterAsync(int x)
    {
        await Task.Yield();
        return x * x;
    }

    public static ValueTask<int> NegateAsync(int x) => new(-x);

    public static async Task<int> WaitForCancellationAsync(int x, CancellationToken cancellationToken)
    {
        Announce.Waiting(x);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return x;
        }
        catch (OperationCanceledException)
        {
            TokenProbe.Canceled = true;
            throw;
        }
    }
}

/// <summary>What a worker saw, read back by a later task on the same worker.</summary>
public static class TokenProbe
{
    private static volatile bool s_canceled;

    public static bool Canceled
    {
        get => s_canceled;
        set => s_canceled = value;
    }
}

/// <summary>
/// Tasks that return only once <c>count</c> of them with the same key are running at once in one process:
/// proof of concurrency that needs no clock (a bounded wait turns a failure into <c>false</c>).
/// </summary>
public static class Rendezvous
{
    private static readonly ConcurrentDictionary<string, (StrongBox<int> Arrived, TaskCompletionSource All)> Meetings = new();

    public static async Task<bool> MeetAsync(string key, int count)
    {
        (StrongBox<int> arrived, TaskCompletionSource all) = Meetings.GetOrAdd(
            key, static _ => (new StrongBox<int>(0), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
        if (Interlocked.Increment(ref arrived.Value) >= count)
        {
            all.TrySetResult();
        }

        try
        {
            await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>How many calls of a synchronous function ran at once in this process, at most.</summary>
public static class Overlap
{
    private static int s_running;
    private static int s_most;

    public static int Most => Volatile.Read(ref s_most);

    public static int Track(int x)
    {
        int now = Interlocked.Increment(ref s_running);
        int most;
        while (now > (most = Volatile.Read(ref s_most)) && Interlocked.CompareExchange(ref s_most, now, most) != most)
        {
        }

        Thread.SpinWait(1000);
        Interlocked.Decrement(ref s_running);
        return x;
    }
}

/// <summary>Counts tasks that ended because their token was cancelled, in this process.</summary>
public static class CancelCounter
{
    private static int s_count;

    public static int Count => Volatile.Read(ref s_count);

    public static async Task<int> WaitAsync(int x, CancellationToken cancellationToken)
    {
        Announce.Waiting(x);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return x;
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref s_count);
            throw;
        }
    }
}

/// <summary>A line on the worker's stdout that a test waits for: the task is running now.</summary>
public static class Announce
{
    public const string Prefix = "waiting for cancellation: ";

    public static void Waiting(int x)
    {
        Console.WriteLine(Prefix + x);
        Console.Out.Flush();
    }

    /// <summary>Options whose worker output completes the returned task once <paramref name="count"/> tasks announced themselves.</summary>
    public static ProcessPoolOptions Counting(ProcessPoolOptions options, int count, out Task allWaiting)
    {
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int seen = 0;
        allWaiting = all.Task;
        return options with
        {
            WorkerOutput = line =>
            {
                if (line.Text.StartsWith(Prefix, StringComparison.Ordinal) && Interlocked.Increment(ref seen) >= count)
                {
                    all.TrySetResult();
                }
            },
        };
    }
}

/// <summary>What a pool's initializer left in a worker.</summary>
public static class InitProbe
{
    public static string? Value { get; set; }
}

/// <summary>State in a private field behind a parameterless constructor: JSON would silently lose it.</summary>
public sealed class Tally
{
    private int _count;

    public int Count => _count;

    public Tally Add(int n)
    {
        _count += n;
        return this;
    }
}

/// <summary>An object that refers to itself.</summary>
public sealed class SelfReferring
{
    public SelfReferring? Self { get; set; }

    public int Value { get; set; } = 1;
}

/// <summary>A get-only property that only a constructor MessagePack does not pick can set: it would arrive as 0.</summary>
public sealed class Scaled
{
    public Scaled()
    {
    }

    public Scaled(int seed) => Value = seed * 2;

    public int Value { get; }
}
