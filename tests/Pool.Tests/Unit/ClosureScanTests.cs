using System.Reflection;
using Pool.Internal;

namespace Pool.Tests.Unit;

/// <summary>Which captured variables a lambda really uses, read from its IL: only those are shipped.</summary>
public class ClosureScanTests
{
    [Fact]
    public void A_lambda_uses_only_the_captured_variables_it_reads_not_its_neighbours()
    {
        int offset = 1;
        var log = new MemoryStream();
        Func<int, int> shipped = x => x + offset;
        Action neighbour = () => log.WriteByte(1);

        IReadOnlySet<(Module, int)>? used = ClosureScan.FieldsUsedBy(shipped.Method);

        ClosureScan.Uses(used, Field(shipped, nameof(offset))).Should().BeTrue();
        ClosureScan.Uses(used, Field(shipped, nameof(log))).Should().BeFalse();
        neighbour.Target.Should().BeSameAs(shipped.Target, "both lambdas share one closure object");
    }

    [Fact]
    public void An_async_lambda_is_read_through_its_state_machine()
    {
        int offset = 1;
        var log = new MemoryStream();
        Func<int, Task<int>> shipped = async x =>
        {
            await Task.Yield();
            return x + offset;
        };
        Action neighbour = () => log.WriteByte(1);

        IReadOnlySet<(Module, int)>? used = ClosureScan.FieldsUsedBy(shipped.Method);

        used.Should().NotBeNull();
        ClosureScan.Uses(used, Field(shipped, nameof(offset))).Should().BeTrue();
        ClosureScan.Uses(used, Field(shipped, nameof(log))).Should().BeFalse();
        neighbour.Should().NotBeNull();
    }

    [Fact]
    public void Lambdas_made_inside_the_lambda_and_local_functions_it_calls_are_read_too()
    {
        int offset = 1;
        int scale = 2;
        var log = new MemoryStream();
        Func<int[], int> withInner = xs => xs.Sum(y => y + offset);
        Func<int, int> withLocal = x => Scale(x);
        Action neighbour = () => log.WriteByte(1);

        ClosureScan.Uses(ClosureScan.FieldsUsedBy(withInner.Method), Field(withInner, nameof(offset))).Should().BeTrue();
        ClosureScan.Uses(ClosureScan.FieldsUsedBy(withLocal.Method), Field(withLocal, nameof(scale))).Should().BeTrue();
        ClosureScan.Uses(ClosureScan.FieldsUsedBy(withLocal.Method), Field(withLocal, nameof(log))).Should().BeFalse();
        neighbour.Should().NotBeNull();

        int Scale(int x) => x * scale;
    }

    [Fact]
    public void A_lambda_in_an_inner_scope_reaches_the_outer_scope_through_its_link()
    {
        int outer = 1;
        Func<int, int>? shipped = null;
        for (int i = 0; i < 1; i++)
        {
            int inner = i;
            shipped = x => x + inner + outer;
        }

        IReadOnlySet<(Module, int)>? used = ClosureScan.FieldsUsedBy(shipped!.Method);
        FieldInfo link = shipped.Target!.GetType().GetFields().Single(f => f.Name.Contains("locals", StringComparison.Ordinal));
        FieldInfo outerField = link.FieldType.GetField(nameof(outer))!;

        ClosureScan.Uses(used, link).Should().BeTrue();
        ClosureScan.Uses(used, outerField).Should().BeTrue();
    }

    [Fact]
    public void An_expression_tree_built_inside_the_lambda_counts_as_a_use()
    {
        int offset = 1;
        var log = new MemoryStream();
        Func<int, int> shipped = x => ((System.Linq.Expressions.Expression<Func<int>>)(() => offset)).Compile()() + x;
        Action neighbour = () => log.WriteByte(1);

        ClosureScan.Uses(ClosureScan.FieldsUsedBy(shipped.Method), Field(shipped, nameof(offset))).Should().BeTrue();
        ClosureScan.Uses(ClosureScan.FieldsUsedBy(shipped.Method), Field(shipped, nameof(log))).Should().BeFalse();
        neighbour.Should().NotBeNull();
    }

    private static FieldInfo Field(Delegate function, string name) =>
        function.Target!.GetType().GetField(name) ?? throw new InvalidOperationException($"No captured field {name}.");
}
