using System.Text;

namespace Pool.Tests.Shipping;

/// <summary>
/// <see cref="JsonPoolSerializer"/>, the option to the default MessagePack: what it brings back different (private state,
/// derived objects not listed with [JsonDerivedType], framework values it reads wrong) is refused at the call or fails
/// its task, saying where; derived types listed on the base type ship whole.
/// </summary>
public class JsonSerializerTests(JsonPoolFixture fixture) : IClassFixture<JsonPoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task A_base_type_that_lists_its_derived_types_ships_them_whole()
    {
        FidelityTests.Figure[] figures = [new FidelityTests.Circle { Radius = 2 }, new FidelityTests.Figure()];

        double[] radii = await Pool.MapAsync((FidelityTests.Figure f) => f is FidelityTests.Circle c ? c.Radius : -1, figures).Within();

        radii.Should().Equal(2, -1);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_item_declared_as_an_interface_is_refused_at_the_call_saying_to_declare_the_concrete_type()
    {
        Action map = () => Pool.MapAsync(DeclarationTests.Area, new DeclarationTests.IShape[] { new DeclarationTests.Square(2) });

        map.Should().Throw<ArgumentException>().WithParameterName("items")
            .WithMessage("The first item (a *Square) cannot be sent to a worker with JsonPoolSerializer*declared as *IShape, an interface*Declare it as the concrete type*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task Private_state_the_serializer_does_not_write_is_refused_naming_the_field()
    {
        var counter = new FidelityTests.Counter();
        counter.Add();
        counter.Add();

        Action apply = () => Pool.ApplyAsync((FidelityTests.Counter c) => c.Count, counter);

        apply.Should().Throw<ArgumentException>().WithParameterName("arg")
            .WithMessage("The argument (a *FidelityTests.Counter) would not arrive in a worker as it is*at field `_count`, the worker would get 0 instead of 2*[NonSerialized]*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_nested_difference_is_named_by_its_path()
    {
        var order = new FidelityTests.Order("A-1", [new FidelityTests.Line(1, 2.5m), new FidelityTests.Line(2, 4m, new FidelityTests.Counter())], new Dictionary<string, object> { ["note"] = "x", ["n"] = 3 });
        order.Lines[1].Tally!.Add();

        Action apply = () => Pool.ApplyAsync((FidelityTests.Order o) => o.Lines.Count, order);

        apply.Should().Throw<ArgumentException>().WithMessage("*at field `_count` of property `Tally` of element [1] of property `Lines`, the worker would get 0 instead of 1*");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_framework_value_the_serializer_reads_back_wrong_is_refused_as_argument_and_as_capture()
    {
        var rune = new Rune('é');

        Action apply = () => Pool.ApplyAsync((Rune r) => r.Value, rune);
        apply.Should().Throw<ArgumentException>().WithMessage("The argument (a *Rune) would not arrive in a worker as it is*");

        Action capture = () => Pool.ApplyAsync((int x) => x + rune.Value, 1);
        capture.Should().Throw<ArgumentException>().WithParameterName("fn").WithMessage("*the captured variable `rune`*would not arrive as it is*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_result_that_would_arrive_different_fails_its_task_saying_where()
    {
        Func<Task> derived = () => Pool.ApplyAsync((int n) => (FidelityTests.Shape)new FidelityTests.Square { Sides = n, Side = 2.5 }, 4).Task.Within();
        (await derived.Should().ThrowAsync<InvalidOperationException>())
            .WithMessage("*The function returned a *FidelityTests.Square that would not arrive in the host as it is*the host would get a *FidelityTests.Shape instead of a *Square*[JsonDerivedType]*");

        Func<Task> privateState = () => Pool.ApplyAsync((int n) => { var c = new FidelityTests.Counter(); for (int i = 0; i < n; i++) { c.Add(); } return c; }, 2).Task.Within();
        (await privateState.Should().ThrowAsync<InvalidOperationException>())
            .WithMessage("*at field `_count`, the host would get 0 instead of 2*state the host needs*");

        (await Pool.ApplyAsync((int n) => new FidelityTests.Order("B", [new FidelityTests.Line(n, 1.5m)], []), 3).Task.Within()).Lines.Single().Qty.Should().Be(3);
        (await Pool.ApplyAsync((int n) => (FidelityTests.Figure)new FidelityTests.Circle { Radius = n }, 5).Task.Within()).Should().BeOfType<FidelityTests.Circle>().Which.Radius.Should().Be(5);
        (await Pool.ApplyAsync((int n) => FidelityTests.OnceOnly.Range(n), 3).Task.Within()).Should().Equal(0, 1, 2);
        await StillWorksAsync();
    }

    private async Task StillWorksAsync() =>
        (await Pool.MapAsync(Functions.Increment, new[] { 1 }).Within()).Should().Equal(2);
}
