using System.Diagnostics;
using CliWrap;
using Microsoft.Extensions.Logging;
using Pool.Internal;
using Pool.Tests.Faults;
using Xunit.Abstractions;

namespace Pool.Tests.Slurm;

/// <summary>
/// <see cref="SlurmAllocation"/> against the real cluster of eng/slurm. One collection: the cluster's two nodes are
/// shared, and an allocation of whole nodes would make the others wait.
/// </summary>
[Trait("Category", "Slurm")]
[Collection("Slurm")]
public sealed class SlurmAllocationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private static SlurmLauncher TwoNodes => new() { Nodes = 2, WorkersPerNode = 1 };

    [SlurmFact(Timeout = 60_000)]
    public async Task An_owned_allocation_of_two_nodes_holds_both_and_ends_when_disposed()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        var clock = Stopwatch.StartNew();
        SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        output.WriteLine($"job {allocation.JobId} running after {clock.ElapsedMilliseconds} ms");
        try
        {
            allocation.Owned.Should().BeTrue();
            allocation.Nodes.Should().Equal(cluster.Nodes);
            allocation.Slots.Should().Be(2);
            cluster.JobIds().Should().Contain(allocation.JobId);
            allocation.ResolveHostAddress(TwoNodes).Should().Be(cluster.BridgeAddress, "the host reaches the nodes over the bridge");
            allocation.ResolveHostAddress(TwoNodes with { HostAddress = "192.0.2.7" }).Should().Be("192.0.2.7");
        }
        finally
        {
            clock.Restart();
            await allocation.DisposeAsync();
            output.WriteLine($"disposed in {clock.ElapsedMilliseconds} ms");
        }

        cluster.JobIds().Should().NotContain(allocation.JobId);
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task Without_workers_per_node_an_owned_allocation_takes_whole_nodes_and_counts_their_cpus()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(new SlurmLauncher { Nodes = 2 }, StartTimeout, null, CancellationToken.None);
        // Each node of eng/slurm has the machine's CPUs (CPUs=$(nproc)).
        allocation.Slots.Should().Be(cluster.Nodes.Count * Environment.ProcessorCount);
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task An_invalid_partition_fails_with_what_sbatch_said()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        IReadOnlyList<string> before = cluster.JobIds();
        Func<Task> acquire = () => SlurmAllocation.AcquireAsync(TwoNodes with { Partition = "nope" }, StartTimeout, null, CancellationToken.None);
        (await acquire.Should().ThrowAsync<WorkerStartException>()).Which.Message.Should().Contain("invalid partition specified: nope");
        cluster.JobIds().Should().BeEquivalentTo(before);
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task A_job_that_stays_pending_fails_at_the_timeout_with_its_pending_reason_and_is_cancelled()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        var logger = new ListLogger();
        // More nodes than the partition has: sbatch accepts it and the job pends forever, with reason PartitionConfig at
        // first and PartitionNodeLimit once the scheduler has looked at it (both seen here).
        Func<Task> acquire = () => SlurmAllocation.AcquireAsync(new SlurmLauncher { Nodes = 3, WorkersPerNode = 1 }, TimeSpan.FromSeconds(2), logger, CancellationToken.None);
        string message = (await acquire.Should().ThrowAsync<WorkerStartException>()).Which.Message;
        output.WriteLine(message);
        message.Should().MatchRegex("within 2 s: it is PENDING, reason Partition(Config|NodeLimit) \\(the request exceeds what the partition holds");
        logger.Lines.Should().Contain(line => line.Contains("PENDING, reason Partition", StringComparison.Ordinal));
        string job = logger.Lines.First(line => line.StartsWith("Asked Slurm", StringComparison.Ordinal)).Split(' ')[6];
        cluster.JobIds().Should().NotContain(job, "a job that did not start in time is cancelled");
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task A_step_runs_on_the_node_placed_and_workers_spread_over_the_nodes()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        string first = allocation.PlaceWorker();
        string second = allocation.PlaceWorker();
        first.Should().Be(cluster.Nodes[0]);
        second.Should().Be(cluster.Nodes[1]);
        allocation.PlaceWorker().Should().Be(cluster.Nodes[0], "a tie goes to the first node");
        allocation.ReleaseWorker(cluster.Nodes[1]);
        allocation.PlaceWorker().Should().Be(cluster.Nodes[1], "the node with the fewest live workers");

        foreach (string node in cluster.Nodes)
        {
            (int exitCode, string stdout, _) = await RunStepAsync(allocation, node, "hostname", []);
            exitCode.Should().Be(0);
            stdout.Trim().Should().Be(node);
        }
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task A_step_passes_the_callers_environment_to_the_worker()
    {
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        (_, string stdout, _) = await RunStepAsync(allocation, allocation.Nodes[1], "/bin/sh", ["-c", "echo $PP_TEST_SETUP"],
            info => info.Environment["PP_TEST_SETUP"] = "secret-in-the-environment");
        stdout.Trim().Should().Be("secret-in-the-environment");
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task A_path_missing_on_the_nodes_is_named_with_its_node()
    {
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        string missing = "/nonexistent/processpool/" + Guid.NewGuid().ToString("N");
        await allocation.CheckPathsAsync([AppContext.BaseDirectory, typeof(SlurmAllocation).Assembly.Location], CancellationToken.None);

        Func<Task> check = () => allocation.CheckPathsAsync([AppContext.BaseDirectory, missing], CancellationToken.None);
        string message = (await check.Should().ThrowAsync<WorkerStartException>()).Which.Message;
        output.WriteLine(message);
        message.Should().Contain($"{missing} is missing on node ").And.Contain("shared filesystem");
        message.Should().ContainAny(allocation.Nodes);
    }

    /// <summary>srun's exit code and its "task 0: ..." line for a worker's exit code, SIGKILL and SIGSEGV (FACTS for SlurmStepExit).</summary>
    [SlurmFact(Timeout = 60_000)]
    public async Task The_step_exit_gives_the_workers_exit_code_or_signal()
    {
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        string node = allocation.Nodes[0];
        foreach ((string script, int expected, string? signal) in new[] { ("exit 3", 3, null), ("kill -KILL $$", 137, "SIGKILL"), ("kill -SEGV $$", 139, "SIGSEGV") })
        {
            (int exitCode, _, string stderr) = await RunStepAsync(allocation, node, "/bin/sh", ["-c", script]);
            string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            output.WriteLine($"{script}: srun exited {exitCode}; {string.Join(" | ", lines)}");
            exitCode.Should().Be(expected);
            WorkerExit? exit = SlurmStepExit.ParseStepExit(exitCode, lines);
            exit.Should().Be(new WorkerExit(expected));
            exit!.SignalName.Should().Be(signal);
        }
    }

    [SlurmFact(Timeout = 60_000)]
    public async Task Killing_a_workers_srun_ends_its_task_on_the_node()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        await using SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        string node = allocation.Nodes[1];
        string marker = (1000 + Random.Shared.Next(1000)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var srun = new Process { StartInfo = allocation.CreateStepStartInfo(node, "sleep", [marker]) };
        await ProcessLauncher.StartAsync(srun);
        srun.StandardInput.Close();
        int task = await WaitForTaskAsync(cluster, node, "sleep " + marker);

        var clock = Stopwatch.StartNew();
        srun.Kill();
        OrphanTests.WaitForExit(task, TimeSpan.FromSeconds(5)).Should().BeTrue("SIGKILL to srun ends the remote task");
        output.WriteLine($"task gone {clock.ElapsedMilliseconds} ms after srun's SIGKILL");
    }

    [SlurmFact(Timeout = 90_000)]
    public async Task An_owned_allocation_ends_when_its_host_is_killed()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        await using var host = SlurmHost.Start(output, environment: null);
        (string job, bool owned, string node, int task) = await host.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        owned.Should().BeTrue();
        cluster.JobIds().Should().Contain(job);

        var clock = Stopwatch.StartNew();
        host.Kill();
        OrphanTests.WaitForExit(task, TimeSpan.FromSeconds(5)).Should().BeTrue($"the step's task on {node} ends with its srun, which dies with the host");
        TimeSpan taskGone = clock.Elapsed;
        while (cluster.JobIds().Contains(job) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }

        output.WriteLine($"host SIGKILLed: task gone after {taskGone.TotalMilliseconds:F0} ms, job {job} gone from squeue after {clock.ElapsedMilliseconds} ms");
        cluster.JobIds().Should().NotContain(job, "the watcher cancels the job within 10 s of its host's death");
    }

    [SlurmFact(Timeout = 90_000)]
    public async Task Inside_an_allocation_it_is_used_and_left_when_the_host_is_killed()
    {
        SlurmCluster cluster = SlurmCluster.Current;
        await using SlurmAllocation outer = await SlurmAllocation.AcquireAsync(TwoNodes, StartTimeout, null, CancellationToken.None);
        await using var host = SlurmHost.Start(output, environment: new Dictionary<string, string?> { ["SLURM_JOB_ID"] = outer.JobId });
        (string job, bool owned, _, int task) = await host.Ready.WaitAsync(TimeSpan.FromSeconds(60));
        job.Should().Be(outer.JobId);
        owned.Should().BeFalse();

        host.Kill();
        OrphanTests.WaitForExit(task, TimeSpan.FromSeconds(5)).Should().BeTrue();
        await Task.Delay(1000);
        cluster.JobIds().Should().Contain(outer.JobId, "an allocation of the user's is not this pool's to end");
    }

    private static async Task<int> WaitForTaskAsync(SlurmCluster cluster, string node, string commandLine)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            foreach ((int pid, string line) in cluster.ProcessesOf(node))
            {
                if (line.EndsWith(commandLine, StringComparison.Ordinal) && !line.Contains("srun", StringComparison.Ordinal))
                {
                    return pid;
                }
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"No process \"{commandLine}\" on {node} after 20 s");
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunStepAsync(
        SlurmAllocation allocation, string node, string program, IReadOnlyList<string> arguments, Action<ProcessStartInfo>? configure = null)
    {
        ProcessStartInfo info = allocation.CreateStepStartInfo(node, program, arguments);
        configure?.Invoke(info);
        using var process = new Process { StartInfo = info };
        await ProcessLauncher.StartAsync(process);
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Keeps each formatted entry.</summary>
    private sealed class ListLogger : ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception));
    }

    /// <summary>tests/Pool.TestHost in its "slurm-allocation" mode: an allocation and a sleeping step, until killed.</summary>
    private sealed class SlurmHost : IAsyncDisposable
    {
        private readonly TaskCompletionSource<(string, bool, string, int)> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _cleanup = new();
        private readonly CommandTask<CommandResult> _run;
        private readonly ITestOutputHelper _output;
        private (string Job, bool Owned) _job;

        private SlurmHost(ITestOutputHelper output, IReadOnlyDictionary<string, string?>? environment)
        {
            _output = output;
            string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
            string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            _run = Cli.Wrap(dotnet).WithArguments([host, "slurm-allocation"])
                .WithEnvironmentVariables(environment ?? new Dictionary<string, string?>())
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(PipeTarget.ToDelegate(OnLine))
                .WithStandardErrorPipe(PipeTarget.ToDelegate(line => _output.WriteLine("host stderr: " + line)))
                .ExecuteAsync(_cleanup.Token);
            _ = _run.Task.ContinueWith(
                t => _ready.TrySetException(new InvalidOperationException("The test host ended early")),
                CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }

        /// <summary>The job, whether the host owns it, the step's node and the pid of its task there.</summary>
        public Task<(string Job, bool Owned, string Node, int Task)> Ready => _ready.Task;

        public static SlurmHost Start(ITestOutputHelper output, IReadOnlyDictionary<string, string?>? environment) => new(output, environment);

        /// <summary>SIGKILL to the host alone, not its tree: as the kernel's OOM killer or kill -9 would.</summary>
        public void Kill() => Process.GetProcessById(_run.ProcessId).Kill(entireProcessTree: false);

        private void OnLine(string line)
        {
            _output.WriteLine("host: " + line);
            string[] words = line.Split(' ');
            if (words is ["job", string job, "owned", string owned])
            {
                _job = (job, bool.Parse(owned));
            }
            else if (words is ["step", string node, string marker])
            {
                _ = FindTaskAsync(node, marker);
            }
        }

        private async Task FindTaskAsync(string node, string marker)
        {
            try
            {
                int task = await WaitForTaskAsync(SlurmCluster.Current, node, "sleep " + marker);
                _ready.TrySetResult((_job.Job, _job.Owned, node, task));
            }
            catch (TimeoutException e)
            {
                _ready.TrySetException(e);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _cleanup.CancelAsync();
            try
            {
                await _run;
            }
            catch (OperationCanceledException)
            {
                // Still running: killed by the cancellation, as meant.
            }

            _cleanup.Dispose();
        }
    }
}
