using System.Linq.Expressions;
using Pool.Contracts;
using Pool.Internal;
using Pool.Tests.Shipping;

namespace Pool.Tests.Unit;

public class FunctionRegistryTests
{
    private readonly FunctionRegistry _registry = new();

    [Fact]
    public void A_static_method_ships_as_a_reference_to_this_build()
    {
        ShippedFunction shipped = _registry.Get((Func<int, int>)Functions.Square, typeof(Func<int, int>), "fn");

        shipped.Descriptor.TargetKind.Should().Be(TargetKind.None);
        shipped.Descriptor.MethodName.Should().Be(nameof(Functions.Square));
        shipped.Descriptor.ModuleVersionId.Should().Be(typeof(Functions).Module.ModuleVersionId);
        shipped.DisplayName.Should().Be("Functions.Square(Int32)");
        _registry.Get((Func<int, int>)Functions.Square, typeof(Func<int, int>), "fn").Id.Should().Be(shipped.Id, "a function is described once");
    }

    [Fact]
    public void A_lambda_that_captures_nothing_ships_with_its_compiler_singleton()
    {
        ShippedFunction shipped = _registry.Get((Func<int, int>)(x => x + 1), typeof(Func<int, int>), "fn");

        shipped.Descriptor.TargetKind.Should().Be(TargetKind.Singleton);
        shipped.DisplayName.Should().StartWith("lambda in FunctionRegistryTests.");
    }

    [Fact]
    public void A_closure_ships_its_target_with_each_call_under_an_id_of_that_call()
    {
        int offset = 3;
        Func<int, int> closure = x => x + offset;

        ShippedFunction first = _registry.Get(closure, typeof(Func<int, int>), "fn");
        ShippedFunction second = _registry.Get(closure, typeof(Func<int, int>), "fn");

        first.Descriptor.TargetKind.Should().Be(TargetKind.Serialized);
        first.Descriptor.TargetType.Should().BeNull("the target's type is the method's declaring type, which the token finds");
        first.Descriptor.Target.Should().NotBeEmpty();
        first.PerCall.Should().BeTrue();
        second.Id.Should().NotBe(first.Id, "the target may have changed between calls");
    }

    [Fact]
    public void A_method_of_a_plain_class_through_its_own_Func_is_described_without_type_names()
    {
        FunctionDescriptor plain = _registry.Get((Func<int, int>)Functions.Square, typeof(Func<int, int>), "fn").Descriptor;
        FunctionDescriptor widened = _registry.Get((Func<string, int>)Widened.Length, typeof(Func<string, int>), "fn").Descriptor;
        FunctionDescriptor generic = _registry.Get((Func<int, int[]>)Box<int>.Twice, typeof(Func<int, int[]>), "fn").Descriptor;

        plain.DeclaringType.Should().BeNull();
        plain.DelegateType.Should().BeNull();
        plain.AssemblyName.Should().Be(typeof(Functions).Assembly.GetName().Name);
        widened.DeclaringType.Should().BeNull();
        widened.DelegateType.Should().Be(typeof(Func<string, int>).AssemblyQualifiedName, "the method's own Func takes an object");
        generic.DeclaringType.Should().Be(typeof(Box<int>).AssemblyQualifiedName, "a token does not say which Box");
        generic.DelegateType.Should().BeNull();
    }

    [Fact]
    public void A_multicast_delegate_is_refused_naming_the_parameter()
    {
        Func<int, int> both = Functions.Square;
        both += Functions.Increment;
        Action ship = () => _registry.Get(both, typeof(Func<int, int>), "fn");
        ship.Should().Throw<ArgumentException>().WithParameterName("fn").WithMessage("*multicast*");
    }

    [Fact]
    public void A_compiled_expression_is_refused_as_dynamic_code()
    {
        Expression<Func<int, int>> expression = x => x * 3;
        Func<int, int> compiled = expression.Compile();
        Action ship = () => _registry.Get(compiled, typeof(Func<int, int>), "fn");
        ship.Should().Throw<ArgumentException>().WithMessage("*dynamic method*written in source*");
    }
}
