using System.Collections.Concurrent;
using System.Numerics;
using System.Text;
using System.Text.Json.Serialization;

namespace Pool.Tests.Shipping;

/// <summary>
/// A value reaches the worker as the caller has it, or the call is refused naming where it would differ:
/// the first item of a map and an apply's argument are written, read back and compared, field by field for
/// the application's own types. Values the serializer used to bring back wrong without an error
/// (BigInteger, Complex, stacks, lone surrogates, derived objects, private state) are covered here.
/// </summary>
public class FidelityTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task Big_integers_and_complex_numbers_arrive_whole_and_come_back_whole()
    {
        BigInteger big = BigInteger.Pow(10, 40) + 7;
        BigInteger[] doubled = await Pool.MapAsync((BigInteger b) => b * 2, new[] { big, -big, BigInteger.Zero }).Within();
        doubled.Should().Equal(big * 2, -big * 2, BigInteger.Zero);

        Complex product = await Pool.ApplyAsync((Complex c) => c * c, new Complex(1, 2)).Task.Within();
        product.Should().Be(new Complex(-3, 4));

        BigInteger captured = big;
        (await Pool.ApplyAsync((int x) => (captured + x).ToString(System.Globalization.CultureInfo.InvariantCulture), 1).Task.Within()).Should().Be((big + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact(Timeout = 60_000)]
    public async Task Stacks_keep_their_order_both_ways()
    {
        var stack = new Stack<int>([1, 2, 3]);
        (await Pool.ApplyAsync((Stack<int> s) => string.Join(",", s), stack).Task.Within()).Should().Be("3,2,1");

        Stack<int> back = await Pool.ApplyAsync((int n) => new Stack<int>(Enumerable.Range(1, n)), 3).Task.Within();
        back.Should().Equal(3, 2, 1);

        var concurrent = new ConcurrentStack<string>(["a", "b"]);
        (await Pool.ApplyAsync((ConcurrentStack<string> s) => s.TryPeek(out string? top) ? top : null, concurrent).Task.Within()).Should().Be("b");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_derived_object_passed_as_its_base_type_is_refused_naming_both_types()
    {
        Shape[] shapes = [new Square { Sides = 4, Side = 2.5 }];

        Action map = () => Pool.MapAsync((Shape s) => s.Sides, shapes);

        map.Should().Throw<ArgumentException>().WithParameterName("items")
            .WithMessage("The first item (a *Square) would not arrive in a worker as it is*the worker would get a *Shape instead of a *Square*[Union(0, typeof(Derived))]*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task State_marked_not_to_travel_is_not_compared()
    {
        var cached = new Cached { Name = "x" };
        cached.Warm();

        (await Pool.ApplyAsync((Cached c) => c.Name + c.IsWarm, cached).Task.Within()).Should().Be("xFalse");
    }

    [Fact(Timeout = 60_000)]
    public async Task Records_lists_dictionaries_sets_and_object_members_are_not_refused()
    {
        var order = new Order("A-1", [new Line(1, 2.5m), new Line(2, 4m)], new Dictionary<string, object> { ["note"] = "x", ["n"] = 3 });
        var tags = new HashSet<string>(["b", "a", "c"]);

        (await Pool.ApplyAsync((Order o) => o.Lines.Sum(l => l.Qty * l.Price), order).Task.Within()).Should().Be(10.5m);
        (await Pool.ApplyAsync((HashSet<string> t) => t.Count, tags).Task.Within()).Should().Be(3);
        (await Pool.StarMapAsync((string a, (int, string) b) => a + b.Item2, new[] { ("x", (1, "y")) }).Within()).Should().Equal("xy");
    }

    [Fact(Timeout = 60_000)]
    public async Task Interface_typed_collections_memory_and_lazy_queries_are_compared_by_what_they_hold()
    {
        var holder = new Holder { Values = new[] { 1, 2, 3 }, Bytes = new byte[] { 9, 8 } };
        int tries = 0;
        IEnumerable<int> lazy = Enumerable.Range(0, 3).Select(x => x + tries++);

        (await Pool.ApplyAsync((Holder h) => h.Values.Sum() + h.Bytes.Span[0], holder).Task.Within()).Should().Be(15);
        (await Pool.ApplyAsync((int x) => lazy.Sum() + x, 0).Task.Within()).Should().Be(6);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_string_with_a_lone_surrogate_is_refused_first_and_fails_alone_later()
    {
        Action first = () => Pool.MapAsync((string s) => s.Length, new[] { "a\uD800b" });
        first.Should().Throw<ArgumentException>().WithParameterName("items").WithMessage("*lone surrogate (\\uD800) at index 1*U+FFFD*");

        Outcome<int>[] outcomes = await Pool.MapOutcomesAsync((string s) => s.Length, new[] { "ok", "x\uDC00", "fine" }).Within();
        outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
        outcomes[1].Exception.Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("lone surrogate");
        outcomes[2].Value.Should().Be(4);
    }

    /// <summary>An error must arrive, so its message is not refused: a lone surrogate in it is written as its escape,
    /// visibly, rather than turned into U+FFFD; a valid pair (an emoji) arrives as it was.</summary>
    [Fact(Timeout = 60_000)]
    public async Task A_lone_surrogate_in_an_exception_message_arrives_escaped_not_replaced()
    {
        Func<Task> apply = () => Pool.ApplyAsync((string s) => s.Length > 0 ? throw new InvalidOperationException(s.Replace('#', '\uD800')) : 0, "bad # message \U0001F600").Task;

        (await apply.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Be("bad \\uD800 message \U0001F600");
    }

    private async Task StillWorksAsync() =>
        (await Pool.MapAsync(Functions.Increment, new[] { 1 }).Within()).Should().Equal(2);

    public class Shape
    {
        public int Sides { get; set; }
    }

    public sealed class Square : Shape
    {
        public double Side { get; set; }
    }

    [JsonDerivedType(typeof(Figure), "figure")]
    [JsonDerivedType(typeof(Circle), "circle")]
    public class Figure
    {
    }

    public sealed class Circle : Figure
    {
        public double Radius { get; set; }
    }

    public sealed class Counter
    {
        private int _count;

        public int Count => _count;

        public void Add() => _count++;

        /// <summary>Counted twice, for a test that needs a value in one expression.</summary>
        public Counter Add2()
        {
            _count += 2;
            return this;
        }
    }

    public sealed class Cached
    {
        [NonSerialized]
        private bool _warm;

        public string Name { get; set; } = string.Empty;

        [JsonIgnore]
        public int Hits { get; set; }

        public bool IsWarm => _warm;

        public void Warm()
        {
            _warm = true;
            Hits++;
        }
    }

    public sealed class Holder
    {
        public IReadOnlyList<int> Values { get; set; } = [];

        public ReadOnlyMemory<byte> Bytes { get; set; }
    }

    /// <summary>A sequence that can be enumerated once, as one reading a stream: the check must not run it again.</summary>
    public sealed class OnceOnly(IEnumerable<int> values) : IEnumerable<int>
    {
        private int _enumerations;

        public static IEnumerable<int> Range(int count) => new OnceOnly(Enumerable.Range(0, count));

        public IEnumerator<int> GetEnumerator() => Interlocked.Increment(ref _enumerations) == 1
            ? values.GetEnumerator()
            : throw new InvalidOperationException("enumerated twice");

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public sealed record Line(int Qty, decimal Price, Counter? Tally = null);

    public sealed record Order(string Id, List<Line> Lines, Dictionary<string, object> Meta);
}
