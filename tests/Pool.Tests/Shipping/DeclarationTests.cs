namespace Pool.Tests.Shipping;

/// <summary>
/// Declarations no serializer can honour, an interface-typed parameter or return and a delegate as data, are refused
/// at the call (or fail their task, for a result) saying what to declare instead; an interface that lists its
/// implementations with MessagePack's [Union] travels.
/// </summary>
public class DeclarationTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task An_item_declared_as_an_interface_is_refused_at_the_call_saying_to_declare_the_concrete_type()
    {
        Action map = () => Pool.MapAsync(Area, new IShape[] { new Square(2) });
        Action apply = () => Pool.ApplyAsync(Area, (IShape)new Square(2));

        map.Should().Throw<ArgumentException>().WithParameterName("items")
            .WithMessage("The first item (a *Square)*parameter is declared as *IShape, an interface*Declare it as the concrete type (here *Square)*[MessagePack.Union(0, typeof(Implementation))]*");
        apply.Should().Throw<ArgumentException>().WithParameterName("arg").WithMessage("*declared as *IShape, an interface*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_delegate_as_an_item_is_refused_at_the_call_saying_to_make_it_the_function()
    {
        Action map = () => Pool.MapAsync(CallWithOne, new Func<int, int>[] { x => x + 1 });

        map.Should().Throw<ArgumentException>().WithParameterName("items")
            .WithMessage("The first item (a Func<Int32, Int32>)*A delegate cannot travel as data*Make the delegate the function of the call*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_function_returning_an_interface_fails_its_task_saying_to_declare_the_concrete_return_type()
    {
        Func<Task> apply = () => Pool.ApplyAsync(MakeSquare, 2.0).Task.Within();

        await apply.Should().ThrowAsync<InvalidOperationException>()
            .WithMessage("The function returned a *Square*return type is declared as *IShape, an interface*Declare it as the concrete type*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task An_interface_that_lists_its_implementations_travels_both_ways()
    {
        IUnionShape[] shapes = [new UnionSquare(2), new UnionCircle(1)];

        IUnionShape[] scaled = await Pool.MapAsync(Scale, shapes).Within();

        scaled.Should().Equal(new UnionSquare(4), new UnionCircle(2));
    }

    internal static double Area(IShape shape) => shape.Area;

    private static int CallWithOne(Func<int, int> f) => f(1);

    private static IShape MakeSquare(double side) => new Square(side);

    private static IUnionShape Scale(IUnionShape shape) => shape switch
    {
        UnionSquare s => new UnionSquare(s.Side * 2),
        UnionCircle c => new UnionCircle(c.Radius * 2),
        _ => throw new ArgumentOutOfRangeException(nameof(shape)),
    };

    private async Task StillWorksAsync() =>
        (await Pool.MapAsync(Functions.Increment, new[] { 1 }).Within()).Should().Equal(2);

    public interface IShape
    {
        double Area { get; }
    }

    public sealed record Square(double Side) : IShape
    {
        public double Area => Side * Side;
    }

    [MessagePack.Union(0, typeof(UnionSquare))]
    [MessagePack.Union(1, typeof(UnionCircle))]
    public interface IUnionShape;

    public sealed record UnionSquare(double Side) : IUnionShape;

    public sealed record UnionCircle(double Radius) : IUnionShape;
}
