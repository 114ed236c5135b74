using Pool.Internal;

namespace Pool.Tests.Packaging;

/// <summary>A single-file app (whose assemblies have no file location) is refused at once, saying why.</summary>
public class SingleFileTests
{
    [Fact]
    public void A_host_assembly_without_a_location_fails_with_an_explicit_message()
    {
        Action locate = () => WorkerLaunch.Locate(hostLocation: string.Empty);

        locate.Should().Throw<WorkerStartException>()
            .WithMessage("*single-file*PublishSingleFile*");
    }

    [Fact]
    public void The_test_host_finds_its_worker()
    {
        WorkerLaunch launch = WorkerLaunch.Locate(typeof(WorkerLaunch).Assembly.Location);

        Path.GetFileName(launch.WorkerAssembly).Should().Be("Pool.Worker.dll");
        File.Exists(launch.DepsFile).Should().BeTrue();
        File.Exists(launch.RuntimeConfig).Should().BeTrue();
    }
}
