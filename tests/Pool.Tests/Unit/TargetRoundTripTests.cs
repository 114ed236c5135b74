using Pool.Internal;
using Pool.Tests.Shipping;
using Pool.Worker;

namespace Pool.Tests.Unit;

/// <summary>A target written at the call (<see cref="TargetCapture"/>) and rebuilt as a worker does (<see cref="TargetBuilder"/>), in this process.</summary>
public class TargetRoundTripTests
{
    [Fact]
    public void A_closure_is_rebuilt_as_an_independent_copy_with_its_captured_values()
    {
        int offset = 40;
        var seen = new List<int>();
        Func<int, int> function = x => { seen.Add(x); return x + offset + seen.Count; };

        Func<int, int> copy = RoundTrip(function);

        copy(1).Should().Be(42);
        seen.Should().BeEmpty("the copy holds its own list");
    }

    [Fact]
    public void An_object_is_rebuilt_field_by_field_with_private_and_inherited_state_and_no_constructor()
    {
        Model model = new Doubler(bias: 3);

        RoundTrip<Func<int, int>>(model.Predict)(5).Should().Be(13);
    }

    [Fact]
    public void A_captured_interface_keeps_its_runtime_type_and_a_captured_query_travels_as_its_results()
    {
        IShape shape = Shapes.Make(3);
        int[] numbers = [1, 2, 3, 4];
        IEnumerable<int> evens = numbers.Where(n => n % 2 == 0);
        Func<int, double> function = x => shape.Area() + evens.Sum() + x;

        RoundTrip(function)(1).Should().Be(9 + 6 + 1);
    }

    [Fact]
    public void A_NonSerialized_field_is_left_at_its_default()
    {
        var logger = new SkippingLogger("p");

        RoundTrip<Func<int, string>>(logger.Tag)(1).Should().Be("p1:no sink");
    }

    [Fact]
    public void Types_that_never_ship_are_found_inside_generic_arguments_and_pointers()
    {
        Unshippable.Check(typeof(List<Task<int>>))!.Type.Should().Be<Task<int>>();
        Unshippable.Check(typeof(Dictionary<string, Func<int>>))!.Type.Should().Be<Func<int>>();
        Unshippable.Check(typeof(int).MakePointerType())!.Why.Should().Contain("address");
        Unshippable.Check(typeof(FileStream))!.Why.Should().Contain("stream");
        Unshippable.Check(typeof(string)).Should().BeNull();
        Unshippable.Check(typeof(Dictionary<string, double[]>)).Should().BeNull();
    }

    private static T RoundTrip<T>(T function)
        where T : Delegate
    {
        object original = function.Target!;
        byte[] bytes = TargetCapture.Capture(original, function.Method, PoolSerializer.Default, "fn");
        object rebuilt = new TargetBuilder(PoolSerializer.Default, name => Type.GetType(name, throwOnError: true)!, "fn").Build(original.GetType(), bytes);
        rebuilt.Should().NotBeSameAs(original);
        return function.Method.CreateDelegate<T>(rebuilt);
    }

    public interface IShape
    {
        double Area();
    }

    public static class Shapes
    {
        public static IShape Make(double side) => new Square(side);
    }

    public sealed record Square(double Side) : IShape
    {
        public double Area() => Side * Side;
    }
}
