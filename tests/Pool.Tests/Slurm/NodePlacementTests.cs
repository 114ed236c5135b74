using Pool.Internal;

namespace Pool.Tests.Slurm;

/// <summary>How workers spread over an allocation's nodes; no cluster needed.</summary>
public sealed class NodePlacementTests
{
    [Fact]
    public void Workers_go_to_the_node_with_the_fewest_and_ties_to_the_first()
    {
        var placement = new NodePlacement(["a", "b", "c"]);
        string[] placed = [.. Enumerable.Range(0, 7).Select(_ => placement.Place())];
        placed.Should().Equal("a", "b", "c", "a", "b", "c", "a");
        placement.Release("b");
        placement.Release("b");
        placement.Place().Should().Be("b");
        placement.LiveOn("b").Should().Be(1);
    }

    [Fact]
    public void An_excluded_node_gets_no_more_workers_and_none_left_fails_clearly()
    {
        var placement = new NodePlacement(["a", "b"]);
        placement.Place().Should().Be("a");
        placement.Exclude("b");
        placement.Place().Should().Be("a");
        placement.Exclude("a");
        placement.Invoking(p => p.Place()).Should().Throw<WorkerStartException>().WithMessage("Every node of the allocation is lost*");
        placement.Invoking(p => p.Release("c")).Should().Throw<ArgumentException>();
    }
}
