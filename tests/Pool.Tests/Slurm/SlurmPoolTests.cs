using System.Collections.Concurrent;
using System.Diagnostics;
using CliWrap;
using Pool.Internal;
using Pool.Tests.Faults;

namespace Pool.Tests.Slurm;

/// <summary>
/// A pool whose workers run on the two nodes of the local Slurm cluster (eng/slurm/start-cluster.sh: ppnode1 and
/// ppnode2, each in its own network namespace and with its own hostname and address), asking Slurm for the
/// allocation itself. Every test leaves no job in the queue and no worker alive.
/// </summary>
[Trait("Category", "Slurm")]
[Collection("Slurm")]
public class SlurmPoolTests
{
    private static readonly string[] Nodes = ["ppnode1", "ppnode2"];

    private static ProcessPoolOptions OnTwoNodes(LossLog? log = null, RunningLines? busy = null)
    {
        var options = new ProcessPoolOptions
        {
            Workers = 2, Launcher = new SlurmLauncher { Nodes = 2, WorkersPerNode = 1 }, WorkerOutput = busy is null ? _ => { } : busy.OnLine,
        };
        return log is null ? options : log.Attach(options);
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task Map_imap_and_apply_run_on_both_nodes_and_the_allocation_ends_with_the_pool()
    {
        ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes()).Within();
        string job = (await JobsAsync()).Should().ContainSingle().Subject;

        string[] hosts = await pool.MapAsync(SlurmFunctions.Hostname, Enumerable.Range(0, 16), chunkSize: 1).Within();
        hosts.Distinct().Should().BeEquivalentTo(Nodes, "one worker per node").And.NotContain(Environment.MachineName);
        var squares = new List<int>();
        await foreach (int square in pool.ImapAsync(Functions.Square, Enumerable.Range(0, 1000)))
        {
            squares.Add(square);
        }

        squares.Should().Equal(Enumerable.Range(0, 1000).Select(i => i * i));
        (await pool.ApplyAsync(Functions.Concat, "node", 2).Task.Within()).Should().Be("node2");

        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        (await JobsAsync()).Should().NotContain(job, "the pool's allocation is cancelled when the pool ends");
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task A_crash_on_a_node_fails_only_its_task_and_names_the_node()
    {
        var log = new LossLog();
        await using ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes(log)).Within();
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(RemoteFunctions.CrashOnFive, Enumerable.Range(0, 16), chunkSize: 4).Within();

        WorkerCrashedException crash = outcomes[5].Exception.Should().BeOfType<WorkerCrashedException>().Subject;
        crash.TaskIndex.Should().Be(5);
        crash.Node.Should().BeOneOf(Nodes);
        crash.Message.Should().Contain("on node " + crash.Node);
        outcomes.Where((_, i) => i != 5).Select(o => o.Value).Should().Equal(Enumerable.Range(0, 16).Where(i => i != 5), log.ToString());
        await pool.WhenAllWorkersAsync().Within();
        (await pool.MapAsync(SlurmFunctions.Hostname, Enumerable.Range(0, 8), chunkSize: 1).Within()).Distinct().Should().BeEquivalentTo(Nodes, "the replacement runs in the allocation");
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task A_task_timeout_kills_its_worker_on_the_node_and_a_replacement_starts_there()
    {
        await using ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes()).Within();
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Functions.Sleep, [20, 60_000, 20, 20], chunkSize: 1, taskTimeout: TimeSpan.FromSeconds(1)).Within();

        outcomes[1].Exception.Should().BeOfType<TaskTimeoutException>();
        outcomes.Where((_, i) => i != 1).Select(o => o.Value).Should().Equal(20, 20, 20);
        await pool.WhenAllWorkersAsync().Within();
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 100)).Within()).Should().HaveCount(100);
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task A_node_cut_off_the_network_is_lost_within_the_silence_limit_and_its_other_tasks_run_elsewhere()
    {
        var log = new LossLog();
        var busy = new RunningLines(2);
        await using ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes(log, busy)).Within();
        string[] hosts = await pool.MapAsync(SlurmFunctions.Hostname, Enumerable.Range(0, 4), chunkSize: 1).Within();
        hosts.Distinct().Should().HaveCount(2);

        // Each worker takes one long task; once both run, ppnode1's link goes down: its worker sends nothing more.
        Task<Outcome<string>[]> running = pool.MapOutcomesAsync(SlurmFunctions.HostnameAfter, [3000, 3000, 10, 10, 10, 10], chunkSize: 1);
        await busy.All.Within();
        var clock = Stopwatch.StartNew();
        SlurmCluster.Current.CutLink("ppnode1");
        try
        {
            Outcome<string>[] outcomes = await running.Within();
            clock.Stop();
            WorkerLostException lost = outcomes.Select(o => o.Exception).OfType<WorkerLostException>().Should()
                .ContainSingle(string.Join(" | ", outcomes.Select(o => o.Succeeded ? o.Value : o.Exception!.Message)) + log).Subject;
            lost.Node.Should().Be("ppnode1");
            lost.Message.Should().Contain("ppnode1").And.Contain("went silent");
            outcomes.Where(o => o.Succeeded).Should().HaveCount(5).And.OnlyContain(o => o.Value == "ppnode2", "the lost node's queued tasks ran on the other node");
            clock.Elapsed.Should().BeLessThan(WorkerConnection.SilenceLimit + TimeSpan.FromSeconds(4), log.ToString());
        }
        finally
        {
            SlurmCluster.Current.RestoreLink("ppnode1");
        }

        await pool.WhenAllWorkersAsync().Within();
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 100)).Within()).Should().HaveCount(100);
    }

    [SlurmFact(Timeout = 180_000)]
    public async Task A_node_whose_slurmd_and_workers_are_killed_costs_its_running_task_and_the_pool_goes_on_on_the_other_node()
    {
        var log = new LossLog();
        var busy = new RunningLines(2);
        SlurmCluster cluster = SlurmCluster.Current;
        await using ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes(log, busy)).Within();
        Task<Outcome<string>[]> running = pool.MapOutcomesAsync(SlurmFunctions.HostnameAfter, [3000, 3000, 10, 10, 10, 10], chunkSize: 1);
        await busy.All.Within();
        try
        {
            cluster.KillSlurmd("ppnode1");
            foreach ((int pid, _) in cluster.ProcessesOf("ppnode1"))
            {
                Process.GetProcessById(pid).Kill();
            }

            Outcome<string>[] outcomes = await running.Within();
            WorkerCrashedException crash = outcomes.Select(o => o.Exception).OfType<WorkerCrashedException>().Should()
                .ContainSingle(string.Join(" | ", outcomes.Select(o => o.Succeeded ? o.Value : o.Exception!.Message)) + log).Subject;
            crash.Node.Should().Be("ppnode1");
            outcomes.Where(o => o.Succeeded).Should().HaveCount(5).And.OnlyContain(o => o.Value == "ppnode2");

            // Its replacement cannot start there while slurmd is down: the pool goes on with the other node.
            (await pool.MapAsync(SlurmFunctions.Hostname, Enumerable.Range(0, 20), chunkSize: 1).Within()).Should().OnlyContain(h => h == "ppnode2", log.ToString());
        }
        finally
        {
            cluster.RestartSlurmd("ppnode1");
        }
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task MaxTasksPerWorker_and_the_initializer_work_on_the_nodes_as_on_one_machine()
    {
        await using ProcessPool pool = await ProcessPool.StartAsync(
            (OnTwoNodes() with { MaxTasksPerWorker = 3 }).WithInitializer(Functions.Remember, "ready")).Within();

        string?[] remembered = await pool.MapAsync(Functions.Remembered, Enumerable.Range(0, 12), chunkSize: 1).Within();
        int[] pids = await pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, 12), chunkSize: 1).Within();

        remembered.Should().OnlyContain(r => r != null && r.StartsWith("ready in ", StringComparison.Ordinal), "every worker, replacements included, ran the initializer");
        pids.GroupBy(p => p).Should().OnlyContain(g => g.Count() <= 3, "no worker runs more than its quota").And.HaveCountGreaterThanOrEqualTo(4);
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task A_start_with_an_invalid_partition_fails_naming_it()
    {
        Func<Task> start = () => ProcessPool.StartAsync(OnTwoNodes() with { Launcher = new SlurmLauncher { Partition = "nosuchpartition" } });
        (await start.Should().ThrowAsync<WorkerStartException>()).Which.Message.Should().Contain("nosuchpartition");
        (await JobsAsync()).Should().BeEmpty();
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task Connections_without_the_secret_are_refused_and_the_pool_starts()
    {
        var log = new LossLog();
        var rogues = new ConcurrentBag<Task<int>>();
        WorkerListener.BeforeWorkerStarts.Value = (address, _) =>
        {
            rogues.Add(RemoteLinkTests.ConnectInClearAsync(address));
            return Task.CompletedTask;
        };

        await using ProcessPool pool = await ProcessPool.StartAsync(OnTwoNodes(log)).Within();
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 100)).Within()).Should().HaveCount(100);
        rogues.Should().HaveCount(2);
        foreach (Task<int> rogue in rogues)
        {
            (await rogue.Within()).Should().Be(0, "a peer that does not speak TLS with the pool's certificate gets nothing");
        }

        log.ToString().Should().Contain("Refused a connection");
    }

    [SlurmFact(Timeout = 120_000)]
    public async Task A_host_killed_leaves_no_worker_on_any_node_and_no_allocation()
    {
        string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var pids = new TaskCompletionSource<int[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        int[] workers = [];
        int running = 0;
        using var cleanup = new CancellationTokenSource();
        CommandTask<CommandResult> run = Cli.Wrap(dotnet).WithArguments([host, "2", "slurm"])
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(line =>
            {
                if (line.StartsWith("pids ", StringComparison.Ordinal))
                {
                    workers = [.. line[5..].Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture))];
                }
                else if (line.StartsWith("running ", StringComparison.Ordinal) && Interlocked.Increment(ref running) == 2)
                {
                    pids.TrySetResult(workers);
                }
            }))
            .ExecuteAsync(cleanup.Token);
        int[] busy = await pids.Task.WaitAsync(TimeSpan.FromSeconds(60));
        (await JobsAsync(run.ProcessId)).Should().ContainSingle();

        Process.GetProcessById(run.ProcessId).Kill();
        var clock = Stopwatch.StartNew();
        foreach (int worker in busy)
        {
            // On the kernel's exit event (a pidfd): the nodes' processes are this machine's.
            OrphanTests.WaitForExit(worker, TimeSpan.FromSeconds(2) - TimeSpan.FromTicks(Math.Min(clock.Elapsed.Ticks, TimeSpan.FromSeconds(2).Ticks))).Should().BeTrue("a worker on a node exits as soon as its host's link closes");
        }

        // Slurm has no event for a job leaving the queue: asked every 200 ms, as squeue itself refreshes.
        while ((await JobsAsync(run.ProcessId)).Length > 0 && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(200);
        }

        (await JobsAsync(run.ProcessId)).Should().BeEmpty("the allocation the host asked for ends without it");
        await cleanup.CancelAsync();
    }

    /// <summary>The ids of the jobs in the queue that the pools of process <paramref name="host"/> (this one by default) asked for.</summary>
    private static Task<string[]> JobsAsync(int? host = null) => Task.Run(() =>
    {
        string name = "processpool-" + (host ?? Environment.ProcessId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return SlurmCluster.Run("squeue", "-h", "-o", "%i %j").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ')).Where(parts => parts is [_, string job] && job == name).Select(parts => parts[0]).ToArray();
    });
}

/// <summary>Shipped functions of the Slurm tests.</summary>
public static class SlurmFunctions
{
    public static string Hostname(int _) => Environment.MachineName;

    /// <summary>The node's name after <see cref="RemoteFunctions.SayRunning"/> (which says "running" once the host knows the task runs).</summary>
    public static string HostnameAfter(int milliseconds)
    {
        if (milliseconds > 100)
        {
            RemoteFunctions.SayRunning(milliseconds);
        }

        return Environment.MachineName;
    }
}
