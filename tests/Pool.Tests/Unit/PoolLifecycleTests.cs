using Pool.Internal;

namespace Pool.Tests.Unit;

public class PoolLifecycleTests
{
    [Fact]
    public void A_running_pool_takes_work_and_refuses_join()
    {
        var lifecycle = new PoolLifecycle();
        lifecycle.Invoking(l => l.EnsureRunning("Map")).Should().NotThrow();
        lifecycle.Invoking(l => l.EnsureCanJoin()).Should().Throw<InvalidOperationException>().WithMessage("*Close() or Terminate()*");
    }

    [Fact]
    public void Close_then_terminate_moves_forward_only_and_names_the_state()
    {
        var lifecycle = new PoolLifecycle();
        lifecycle.TryClose().Should().BeTrue();
        lifecycle.TryClose().Should().BeFalse();
        lifecycle.Invoking(l => l.EnsureRunning("Map")).Should().Throw<InvalidOperationException>().WithMessage("Cannot call Map: the pool is closed*");
        lifecycle.Invoking(l => l.EnsureCanJoin()).Should().NotThrow();

        lifecycle.TryTerminate().Should().BeTrue();
        lifecycle.TryTerminate().Should().BeFalse();
        lifecycle.TryClose().Should().BeFalse();
        lifecycle.State.Should().Be(PoolState.Terminated);
        lifecycle.Invoking(l => l.EnsureRunning("Apply")).Should().Throw<InvalidOperationException>().WithMessage("Cannot call Apply: the pool is terminated*");
    }

    [Fact]
    public void A_pool_that_broke_says_why()
    {
        var lifecycle = new PoolLifecycle();
        lifecycle.TryTerminate("its workers could not start: boom").Should().BeTrue();
        lifecycle.Invoking(l => l.EnsureRunning("Imap")).Should().Throw<InvalidOperationException>().WithMessage("*could not start: boom*");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-100_000)]
    public void Zero_workers_or_counting_back_past_the_cores_is_an_argument_error(int workers)
    {
        var options = new ProcessPoolOptions { Workers = workers };
        options.Invoking(o => o.ResolveWorkerCount()).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("Workers");
    }

    [Fact]
    public void Negative_workers_count_back_from_the_cores_as_joblib_does()
    {
        new ProcessPoolOptions { Workers = -1 }.ResolveWorkerCount().Should().Be(Environment.ProcessorCount);
        new ProcessPoolOptions().ResolveWorkerCount().Should().Be(Environment.ProcessorCount);
        new ProcessPoolOptions { Workers = -Environment.ProcessorCount }.ResolveWorkerCount().Should().Be(1);
        new ProcessPoolOptions { Workers = 3 }.ResolveWorkerCount().Should().Be(3);
    }
}
