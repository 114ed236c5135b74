using Pool.Internal;

namespace Pool.Tests.Slurm;

/// <summary>srun's stderr lines as Slurm 22.05 printed them on the eng/slurm cluster; no cluster needed.</summary>
public sealed class SlurmStepExitTests
{
    [Theory]
    [InlineData(3, "srun: error: ppnode1: task 0: Exited with exit code 3", 3, null)]
    [InlineData(137, "srun: error: ppnode1: task 0: Killed", 137, "SIGKILL")]
    [InlineData(139, "srun: error: ppnode1: task 0: Segmentation fault", 139, "SIGSEGV")]
    [InlineData(139, "srun: error: ppnode1: task 0: Segmentation fault (core dumped)", 139, "SIGSEGV")]
    [InlineData(134, "srun: error: ppnode1: task 0: Aborted", 134, "SIGABRT")]
    [InlineData(143, "srun: error: ppnode1: task 0: Terminated", 143, "SIGTERM")]
    [InlineData(139, "srun: error: ppnode1: task 0: Exited with exit code 139", 139, "SIGSEGV")]
    [InlineData(0, "a line of the worker's own", 0, null)]
    public void The_task_line_gives_the_exit(int srunExitCode, string line, int exitCode, string? signal)
    {
        WorkerExit? exit = SlurmStepExit.ParseStepExit(srunExitCode, ["worker output", line]);
        exit.Should().Be(new WorkerExit(exitCode));
        exit!.SignalName.Should().Be(signal);
    }

    [Fact]
    public void A_node_failure_is_no_exit_though_srun_exits_0()
    {
        string[] tail = ["srun: error: Node failure on ppnode2", "srun: Job step aborted: Waiting up to 4 seconds for job step to finish."];
        SlurmStepExit.ParseStepExit(0, tail).Should().BeNull();
        SlurmStepExit.FindNodeFailure(tail).Should().Be("ppnode2");
    }

    [Fact]
    public void A_cancellation_line_says_why()
    {
        SlurmStepExit.FindCancellation(["slurmstepd-ppnode1: error: *** STEP 1.24 ON ppnode1 CANCELLED AT 2026-12-03T05:10:55 ***"])
            .Should().Be("the step was cancelled");
        SlurmStepExit.FindCancellation(["slurmstepd-ppnode1: error: *** JOB 12 ON ppnode1 CANCELLED AT 2026-12-03T05:10:55 DUE TO TIME LIMIT ***"])
            .Should().Be("the job was cancelled due to time limit");
        SlurmStepExit.IsSlurmLine("srun: error: ppnode1: task 0: Killed").Should().BeTrue();
        SlurmStepExit.IsSlurmLine("Unhandled exception. System.Exception").Should().BeFalse();
    }

    [Theory]
    [InlineData(30, "0-00:00:30")]
    [InlineData(3600.2, "0-01:00:01")]
    [InlineData(90061, "1-01:01:01")]
    public void The_time_limit_is_in_sbatch_format(double seconds, string expected) =>
        SlurmAllocation.FormatTime(TimeSpan.FromSeconds(seconds)).Should().Be(expected);

    [Fact]
    public void Scontrols_line_gives_state_reason_nodes_and_cpus()
    {
        const string line = "JobId=6 JobName=wrap UserId=root(0) JobState=RUNNING Reason=None Dependency=(null) ReqNodeList=(null) ExcNodeList=(null) " +
            "NodeList=ppnode[1-2] BatchHost=ppnode1 NumNodes=2 NumCPUs=4 NumTasks=2 CPUs/Task=1 JOB_GRES=(null)   Nodes=ppnode[1-2] CPU_IDs=0-1 Mem=0 GRES= MinCPUsNode=1";
        SlurmJobInfo job = SlurmJobInfo.Parse(line);
        job.IsRunning.Should().BeTrue();
        job.Reason.Should().Be("None");
        job.NodeList.Should().Be("ppnode[1-2]");
        job.NumTasks.Should().Be(2);
        job.NumCpus.Should().Be(4);
        job.CpusPerNodeGroup.Should().Equal(("ppnode[1-2]", 2));

        SlurmJobInfo pending = SlurmJobInfo.Parse("JobId=4 JobState=PENDING Reason=PartitionConfig NodeList=(null) NumTasks=3-3");
        pending.IsPending.Should().BeTrue();
        pending.NodeList.Should().BeEmpty();
        pending.NumTasks.Should().Be(3);
    }
}
