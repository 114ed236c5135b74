using System.Numerics;
using MessagePack;

namespace Pool.Tests.Shipping;

/// <summary>
/// The default serializer, MessagePack (contractless, private members included): what it brings back whole, what
/// arrives in its own shapes (members declared object), and what it refuses at the call, saying what to do.
/// </summary>
public class MessagePackTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task Private_state_tuple_keyed_dictionaries_and_records_arrive_whole_and_come_back_whole()
    {
        var counter = new FidelityTests.Counter();
        counter.Add();
        counter.Add();
        var order = new FidelityTests.Order("A-1", [new FidelityTests.Line(1, 2.5m, counter)], new Dictionary<string, object> { ["note"] = "x", ["n"] = 3 });
        var lookup = new Dictionary<(int, int), string> { [(1, 2)] = "a" };

        (await Pool.ApplyAsync((FidelityTests.Counter c) => c.Count, counter).Task.Within()).Should().Be(2);
        (await Pool.ApplyAsync((FidelityTests.Order o) => o.Lines[0].Tally!.Count + (int)o.Meta["n"], order).Task.Within()).Should().Be(5);
        (await Pool.ApplyAsync((Dictionary<(int, int), string> d) => d[(1, 2)], lookup).Task.Within()).Should().Be("a");
        FidelityTests.Counter back = await Pool.ApplyAsync((int n) => { var c = new FidelityTests.Counter(); for (int i = 0; i < n; i++) { c.Add(); } return c; }, 3).Task.Within();
        back.Count.Should().Be(3);
    }

    /// <summary>
    /// Immutable collections round-trip, and the check does not refuse them falsely: an ImmutableDictionary's order is its
    /// hashing's (it was refused as "would get b instead of a"), and a record's unset ImmutableArray member is a default
    /// one, whose Count throws (the check failed with that InvalidOperationException).
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task Immutable_dictionaries_and_default_immutable_arrays_go_both_ways()
    {
        var names = System.Collections.Immutable.ImmutableDictionary<string, int>.Empty.Add("a", 1).Add("b", 2).Add("zeta", 26);
        (await Pool.ApplyAsync((System.Collections.Immutable.ImmutableDictionary<string, int> d) => d["a"] + d["b"] + d["zeta"], names).Task.Within()).Should().Be(29);
        (await Pool.ApplyAsync(() => System.Collections.Immutable.ImmutableDictionary<int, int>.Empty.Add(1, 1).Add(2, 2).Add(300, 3)).Task.Within())
            .Should().BeEquivalentTo(new Dictionary<int, int> { [1] = 1, [2] = 2, [300] = 3 });

        (await Pool.ApplyAsync((Tagged t) => t.Tags.IsDefault ? t.Name : "not default", new Tagged("n")).Task.Within()).Should().Be("n");
        (await Pool.ApplyAsync((int i) => new Tagged("r" + i), 1).Task.Within()).Tags.IsDefault.Should().BeTrue();
        (await Pool.ApplyAsync((Tagged t) => t.Tags.Sum(), new Tagged("n") { Tags = [1, 2, 3] }).Task.Within()).Should().Be(6);
        (await Pool.ApplyAsync((int i) => i > 0 ? default(ArraySegment<int>) : new ArraySegment<int>([i]), 1).Task.Within()).Count.Should().Be(0);
    }

    /// <summary>Refusals say what is wrong: an enum in an object member arrives as its number (not "a derived object"),
    /// a sorted collection's own comparer does not travel, and a getter that throws is named.</summary>
    [Fact]
    public void An_enum_in_an_object_member_a_custom_sort_order_and_a_throwing_getter_are_refused_saying_what_is_wrong()
    {
        Action boxed = () => Pool.ApplyAsync((Holder h) => h.Value is null, new Holder { Value = Shade.Dark });
        boxed.Should().Throw<ArgumentException>().WithMessage("*An enum in a member declared object travels as its number*declare the member as the enum type*");

        var descending = new SortedDictionary<int, int>(Comparer<int>.Create((a, b) => b.CompareTo(a))) { [1] = 1, [2] = 2 };
        Action sorted = () => Pool.ApplyAsync((SortedDictionary<int, int> d) => d.Count, descending);
        sorted.Should().Throw<ArgumentException>().WithMessage("*comparer does not travel*build the sorted collection with its comparer in the function*");

        Action throwing = () => Pool.ApplyAsync((Touchy t) => t.Secret, new Touchy());
        throwing.Should().Throw<ArgumentException>().WithMessage("*not today.*(the getter of Touchy.Secret threw InvalidOperationException.)*");
    }

    public enum Shade
    {
        Light,
        Dark,
    }

    public sealed class Holder
    {
        public object? Value { get; set; }
    }

    public sealed class Touchy
    {
        public int Secret
        {
            get => Shown ? 1 : throw new InvalidOperationException("not today");
            set => Shown = value > 0;
        }

        public bool Shown { get; set; }
    }

    public sealed record Tagged(string Name)
    {
        public System.Collections.Immutable.ImmutableArray<int> Tags { get; init; }
    }

    [Fact(Timeout = 60_000)]
    public async Task NaN_infinities_date_kinds_decimal_scale_big_integers_and_complex_numbers_survive_as_members_both_ways()
    {
        var sent = new Numbers(
            double.NaN, double.NegativeInfinity, float.PositiveInfinity,
            new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Local), new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Unspecified), new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc),
            1.500m, BigInteger.Pow(10, 40) + 7, new Complex(1, -2), new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.FromHours(5)));

        Numbers back = await Pool.ApplyAsync((Numbers n) => n, sent).Task.Within();

        back.Should().Be(sent);
        double.IsNaN(back.NaN).Should().BeTrue();
        (back.Local.Kind, back.Unspecified.Kind, back.Utc.Kind).Should().Be((DateTimeKind.Local, DateTimeKind.Unspecified, DateTimeKind.Utc));
        back.Money.ToString(System.Globalization.CultureInfo.InvariantCulture).Should().Be("1.500");
        back.Offset.Offset.Should().Be(TimeSpan.FromHours(5));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_member_declared_object_keeps_framework_scalars_and_brings_other_values_in_messagepack_shapes()
    {
        object[] values = [3, 5L, (short)7, 'c', 2.50m, 1.5f, new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Local), Guid.NewGuid(), BigInteger.One << 70, TimeSpan.FromSeconds(3), "s", true];
        var holder = new Loose { Values = values, Nested = new FidelityTests.Line(2, 1.5m), List = new List<int> { 1, 2 } };

        Loose back = await Pool.ApplyAsync((Loose l) => l, holder).Task.Within();

        back.Values.Should().Equal(values);
        back.Values.Select(v => v!.GetType()).Should().Equal(values.Select(v => v.GetType()));
        ((DateTime)back.Values[6]!).Kind.Should().Be(DateTimeKind.Local);
        back.Nested.Should().BeOfType<Dictionary<object, object?>>().Which.Keys.Should().BeEquivalentTo(["Qty", "Price", "Tally"]);
        back.List.Should().BeOfType<object?[]>().Which.Should().HaveCount(2);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_interface_member_without_its_implementations_listed_is_refused_saying_to_list_them_and_a_listed_one_ships_whole()
    {
        Action apply = () => Pool.ApplyAsync((Drawing d) => d.Shape is not null, new Drawing { Shape = new Dot() });

        apply.Should().Throw<ArgumentException>().WithParameterName("arg")
            .WithMessage("The argument (a *Drawing) cannot be sent to a worker with MessagePackPoolSerializer*IShape*[Union(0, typeof(Implementation))]*");

        IListedShape shape = await Pool.ApplyAsync((Sketch s) => s.Shape!, new Sketch { Shape = new Ring { Radius = 4 } }).Task.Within();
        shape.Should().BeOfType<Ring>().Which.Radius.Should().Be(4);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_type_messagepack_cannot_construct_is_refused_as_an_argument_and_copied_field_by_field_as_a_capture()
    {
        Action apply = () => Pool.ApplyAsync((Unbindable u) => u.Value, new Unbindable(4));

        apply.Should().Throw<ArgumentException>().WithParameterName("arg")
            .WithMessage("The argument (a *Unbindable) cannot be sent to a worker with MessagePackPoolSerializer: MessagePack cannot write a *Unbindable: can't find matched constructor*parameters are named as its properties or fields*JsonPoolSerializer*");

        var captured = new Unbindable(4);
        (await Pool.ApplyAsync((int x) => captured.Value + x, 1).Task.Within()).Should().Be(9);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_get_only_property_that_would_arrive_as_zero_is_refused_as_argument_and_fails_its_task_as_result()
    {
        Action apply = () => Pool.ApplyAsync((Scaled s) => s.Value, new Scaled(3));
        apply.Should().Throw<ArgumentException>().WithMessage("*at property `Value`, the worker would get 0 instead of 6*[IgnoreMember]*");

        Func<Task> result = () => Pool.ApplyAsync((int n) => new Scaled(n), 2).Task.Within();
        (await result.Should().ThrowAsync<InvalidOperationException>()).WithMessage("*at property `Value`, the host would get 0 instead of 4*");
        (await Pool.MapAsync(Functions.Increment, new[] { 1 }).Within()).Should().Equal(2);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_argument_that_refers_back_to_itself_is_refused_at_the_call_instead_of_overflowing_the_stack()
    {
        var loop = new SelfReferring();
        loop.Self = loop;

        Action apply = () => Pool.ApplyAsync((SelfReferring s) => s.Value, loop);

        apply.Should().Throw<ArgumentException>().WithParameterName("arg").WithMessage("*nested more than 500 objects deep*refers back*[NonSerialized]*");
        (await Pool.ApplyAsync((SelfReferring s) => s.Value, new SelfReferring { Self = new SelfReferring() }).Task.Within()).Should().Be(1);
    }

    public sealed record Numbers(
        double NaN, double Negative, float Positive, DateTime Local, DateTime Unspecified, DateTime Utc, decimal Money, BigInteger Big, Complex Complex, DateTimeOffset Offset);

    public sealed class Loose
    {
        public object?[] Values { get; set; } = [];

        public object? Nested { get; set; }

        public object? List { get; set; }
    }

    public interface IShape;

    public sealed class Dot : IShape
    {
        public int X { get; set; }
    }

    public sealed class Drawing
    {
        public IShape? Shape { get; set; }
    }

    [Union(0, typeof(Ring))]
    public interface IListedShape;

    public sealed class Ring : IListedShape
    {
        public double Radius { get; set; }
    }

    public sealed class Sketch
    {
        public IListedShape? Shape { get; set; }
    }
}
