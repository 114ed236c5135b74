using Pool.Contracts;

namespace Pool.Tests.Unit;

public class ProgressCellTests
{
    [Fact]
    public void The_worker_side_writes_what_the_host_side_reads_through_the_shared_file()
    {
        using ProgressCell host = ProgressCell.CreateShared(out string path);
        using ProgressCell worker = ProgressCell.OpenShared(path);
        File.Exists(path).Should().BeFalse("the worker deletes the file once both sides have it mapped");

        host.TryRead(out _, out _, out _).Should().BeFalse();
        worker.EnterTimed(41, 7);
        host.TryRead(out int chunk, out int index, out long started).Should().BeTrue();
        (chunk, index).Should().Be((41, 7));
        started.Should().BeGreaterThan(0);

        worker.Leave();
        host.TryRead(out _, out _, out _).Should().BeFalse();
    }
}
