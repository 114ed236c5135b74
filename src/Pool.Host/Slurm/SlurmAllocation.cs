using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Pool.Internal;

/// <summary>
/// The Slurm allocation a pool's workers run in, as job steps: the one this process runs inside (<c>SLURM_JOB_ID</c>
/// set: not owned, left alone at the end), or one this process asked for with <c>sbatch</c> (owned: cancelled on
/// <see cref="DisposeAsync"/>, and by an <see cref="AllocationWatcher"/> if this process dies first). It places workers
/// on nodes and builds each worker's <c>srun</c>; the worker processes themselves are the caller's.
/// Python: dask-jobqueue's <c>SLURMCluster</c> submits one job per worker instead; one allocation holding every worker
/// makes start-up one wait in the queue, and replacing a worker a step (milliseconds), not a new job.
/// </summary>
internal sealed class SlurmAllocation : IAsyncDisposable
{
    /// <summary>
    /// How often the job's state is asked for while it waits. Slurm has no event to wait on from outside a job; squeue
    /// itself refreshes by polling. 250 ms keeps the wait close to the scheduler's own pace (it started an idle
    /// 2-node job in 0.2-0.8 s here) at about 4 light RPCs a second to slurmctld.
    /// </summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long <see cref="DisposeAsync"/> waits for an owned job to leave the queue after scancel.</summary>
    private static readonly TimeSpan ReleaseBound = TimeSpan.FromSeconds(10);

    /// <summary>util-linux's setpriv, as <see cref="WorkerLaunch"/> uses it: srun gets SIGKILL when its launcher thread goes.</summary>
    private static readonly string? Setpriv = OperatingSystem.IsLinux() ? Array.Find(["/usr/bin/setpriv", "/bin/setpriv"], File.Exists) : null;

    private readonly NodePlacement _placement;
    private readonly IReadOnlyDictionary<string, string> _nodeAddresses;
    private readonly int _cpusPerWorker;
    private readonly IReadOnlyList<string> _srunArguments;
    private readonly AllocationWatcher? _watcher;
    private readonly ILogger? _logger;
    private int _disposed;

    private SlurmAllocation(
        string jobId, bool owned, IReadOnlyList<string> nodes, IReadOnlyDictionary<string, string> nodeAddresses, int slots,
        SlurmLauncher options, AllocationWatcher? watcher, ILogger? logger)
    {
        JobId = jobId;
        Owned = owned;
        Nodes = nodes;
        Slots = slots;
        _nodeAddresses = nodeAddresses;
        _placement = new NodePlacement(nodes);
        _cpusPerWorker = options.CpusPerWorker;
        _srunArguments = options.SrunArguments;
        _watcher = watcher;
        _logger = logger;
    }

    /// <summary>The Slurm job id of the allocation.</summary>
    public string JobId { get; }

    /// <summary>Whether this process asked for the allocation and so ends it; false inside an allocation of the user's.</summary>
    public bool Owned { get; }

    /// <summary>The allocation's node names, in Slurm's order (<c>scontrol show hostnames</c> of its NodeList).</summary>
    public IReadOnlyList<string> Nodes { get; }

    /// <summary>
    /// How many workers the allocation holds, for <see cref="ProcessPoolOptions.Workers"/> = null: nodes ×
    /// <see cref="SlurmLauncher.WorkersPerNode"/>; without it, each node's allocated CPUs over
    /// <see cref="SlurmLauncher.CpusPerWorker"/> (an owned allocation takes whole nodes then), or inside a user's
    /// allocation its task count.
    /// </summary>
    public int Slots { get; }

    /// <summary>
    /// Uses the allocation this process runs in, if <c>SLURM_JOB_ID</c> is set; otherwise asks Slurm for one with
    /// <c>sbatch</c> (a holder job whose script only waits) and waits until it runs, logging its pending reason when it
    /// changes.
    /// </summary>
    /// <exception cref="WorkerStartException">
    /// sbatch refused the request (its words: "invalid partition specified: nope"), the job ended before it ran, or it did
    /// not run within <paramref name="timeout"/> (the message names its last pending reason); an owned job is cancelled.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; an owned job is cancelled.</exception>
    public static async Task<SlurmAllocation> AcquireAsync(SlurmLauncher options, TimeSpan timeout, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Environment.GetEnvironmentVariable("SLURM_JOB_ID") is { Length: > 0 } inside)
        {
            return await UseExistingAsync(inside, options, logger, cancellationToken).ConfigureAwait(false);
        }

        IReadOnlyList<string> sbatch = SbatchArguments(options);
        string submitted = await SlurmCommand.RunCheckedAsync("sbatch", sbatch, cancellationToken).ConfigureAwait(false);
        // --parsable prints "jobid" or "jobid;cluster".
        string jobId = submitted.Trim().Split(';')[0];
        if (!long.TryParse(jobId, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            await CancelQuietlyAsync(jobId).ConfigureAwait(false);
            throw new WorkerStartException($"sbatch answered \"{submitted.Trim()}\", not a job id.");
        }

        if (logger is not null)
        {
            SlurmLog.Submitted(logger, jobId, SlurmCommand.Describe("sbatch", sbatch));
        }

        // The watcher first, before the wait: a host killed while its job is pending must not leave the job queued.
        AllocationWatcher watcher;
        try
        {
            watcher = await AllocationWatcher.StartAsync(jobId, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await CancelQuietlyAsync(jobId).ConfigureAwait(false);
            throw;
        }

        try
        {
            var clock = Stopwatch.StartNew();
            SlurmJobInfo job = await WaitUntilRunningAsync(jobId, timeout, logger, cancellationToken).ConfigureAwait(false);
            SlurmAllocation allocation = await CreateAsync(jobId, owned: true, job, options, watcher, logger, cancellationToken).ConfigureAwait(false);
            if (logger is not null)
            {
                SlurmLog.Running(logger, jobId, string.Join(',', allocation.Nodes), allocation.Slots, clock.Elapsed);
            }

            return allocation;
        }
        catch
        {
            await CancelQuietlyAsync(jobId).ConfigureAwait(false);
            watcher.Release();
            throw;
        }
    }

    /// <summary>The node for the next worker: the node with the fewest live workers, the first in order on a tie.</summary>
    public string PlaceWorker() => _placement.Place();

    /// <summary>A worker placed on <paramref name="node"/> by <see cref="PlaceWorker"/> is gone.</summary>
    public void ReleaseWorker(string node) => _placement.Release(node);

    /// <summary>
    /// <paramref name="node"/> is lost (silent to the pool's liveness): no more workers are placed on it. Slurm keeps an
    /// owned allocation on the other nodes (sbatch <c>--no-kill</c>); it marks the node down only after 25-29 s.
    /// </summary>
    public void ExcludeNode(string node) => _placement.Exclude(node);

    /// <summary>
    /// How to start one worker as a job step on <paramref name="node"/>: <c>srun --jobid=J --overlap -N1 -n1 -w node
    /// --cpus-per-task=C --quiet [SrunArguments] program arguments</c>. srun passes this process's environment to the
    /// worker (add the worker's setup to <see cref="ProcessStartInfo.Environment"/>: it reaches the worker, and never a
    /// command line). stdin, stdout and stderr are redirected: srun forwards the worker's output to its own, its stdin to
    /// the worker's (left unredirected, srun would read this process's console), and writes its own lines to stderr
    /// (<see cref="SlurmStepExit"/> reads them).
    /// </summary>
    /// <remarks>
    /// Measured on Slurm 22.05 (eng/slurm): SIGKILL to srun ends the remote task within 0.04-0.08 s (slurmstepd kills
    /// the step when srun's connection goes; the step leaves squeue about 2.4 s later), so killing one worker is killing
    /// its srun: no scancel needed. SIGTERM to srun cancels the step (task gone in about 0.09 s, srun exits 137). One
    /// SIGINT does nothing (srun prints the step's status; it takes a second SIGINT within a second). <c>scancel J.S</c>
    /// also ends the task in about 0.07 s. On Linux srun runs under <c>setpriv --pdeathsig KILL</c>, as local workers do:
    /// if this process dies, the kernel SIGKILLs srun, which ends the remote task in the same way. That signal fires when
    /// the thread that started srun ends: start it from a thread that lives as long as the pool (<see cref="ProcessLauncher"/>),
    /// not a thread-pool thread. Not passed:
    /// <c>--kill-on-bad-exit</c> (with one task per step the step ends with its task anyway; it only adds a
    /// "Terminating StepId" line), <c>--export</c> (<c>--export=NONE</c> drops PATH too).
    /// </remarks>
    public ProcessStartInfo CreateStepStartInfo(string node, string program, IReadOnlyList<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var info = new ProcessStartInfo(Setpriv ?? "srun")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
            StandardOutputEncoding = System.Text.Encoding.UTF8,
            StandardErrorEncoding = System.Text.Encoding.UTF8,
        };
        if (Setpriv is not null)
        {
            foreach (string argument in (string[])["--pdeathsig", "KILL", "--", "srun"])
            {
                info.ArgumentList.Add(argument);
            }
        }

        foreach (string argument in StepArguments(node, _cpusPerWorker))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (string argument in _srunArguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.ArgumentList.Add(program);
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }

    /// <summary>
    /// Checks that every path exists on every node, in one step over all of them (one task per node). Clusters share
    /// the application's build through a shared filesystem; a node that does not see it would start no worker.
    /// </summary>
    /// <exception cref="WorkerStartException">A path is missing on a node (the message names both), or the check could not run.</exception>
    public async Task CheckPathsAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0)
        {
            return;
        }

        // SLURMD_NODENAME is the node's Slurm name (what Nodes lists), which need not be its hostname.
        const string Script =
            "for p in \"$@\"; do [ -e \"$p\" ] || printf 'missing\\t%s\\t%s\\n' \"${SLURMD_NODENAME:-$(hostname)}\" \"$p\"; done";
        string count = Nodes.Count.ToString(CultureInfo.InvariantCulture);
        List<string> arguments =
        [
            $"--jobid={JobId}", "--overlap", $"--nodes={count}", $"--ntasks={count}", "--ntasks-per-node=1",
            $"--nodelist={string.Join(',', Nodes)}", "--quiet", "--job-name=processpool-check", "/bin/sh", "-c", Script, "sh",
            .. paths,
        ];
        SlurmCommandResult result = await SlurmCommand.RunAsync("srun", arguments, cancellationToken).ConfigureAwait(false);
        var missing = new List<(string Node, string Path)>();
        foreach (string line in result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] parts = line.Split('\t');
            if (parts is ["missing", string node, string path])
            {
                missing.Add((node, path));
            }
        }

        if (missing.Count > 0)
        {
            (string node, string path) = missing[0];
            string more = missing.Count > 1
                ? $" (and {missing.Count - 1} more: {string.Join(", ", missing.Skip(1).Take(5).Select(m => $"{m.Path} on {m.Node}"))})"
                : "";
            throw new WorkerStartException(
                $"{path} is missing on node {node} of Slurm job {JobId}{more}: the nodes must see the application's build at the same path (a shared filesystem).");
        }

        if (result.ExitCode != 0)
        {
            throw new WorkerStartException($"Could not check the application's files on the nodes of Slurm job {JobId}: {result.Describe()}");
        }
    }

    /// <summary>
    /// The address of this machine that the nodes reach, for the pool's listener: <see cref="SlurmLauncher.HostAddress"/>
    /// if set, else the local address this machine's routing table uses towards the first node (a UDP socket connected
    /// to the node's address sends nothing; its local end is the interface the kernel chose).
    /// </summary>
    /// <exception cref="WorkerStartException">The first node's address could not be resolved or routed to.</exception>
    public string ResolveHostAddress(SlurmLauncher options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!string.IsNullOrWhiteSpace(options.HostAddress))
        {
            return options.HostAddress;
        }

        string node = Nodes[0];
        // Slurm's NodeAddr first: it is how slurmctld itself reaches the node, where the node's name may not resolve
        // here (as in eng/slurm's cluster, whose node names are in no DNS).
        string target = _nodeAddresses.TryGetValue(node, out string? address) ? address : node;
        try
        {
            IPAddress remote = IPAddress.TryParse(target, out IPAddress? parsed) ? parsed
                : Dns.GetHostAddresses(target).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).First();
            using var socket = new Socket(remote.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(new IPEndPoint(remote, 9));
            return ((IPEndPoint)socket.LocalEndPoint!).Address.ToString();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            throw new WorkerStartException(
                $"Could not find this machine's address towards node {node} ({target}) of Slurm job {JobId}: {e.Message}. Set SlurmLauncher.HostAddress.", e);
        }
    }

    /// <summary>
    /// Owned: cancels the job and waits (at most about 10 s) until it has left the queue; never throws. If that cannot
    /// be confirmed, the watcher stays armed and cancels the job when this process exits. Not owned: nothing.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!Owned || Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        string? failure = await CancelAndWaitAsync(JobId, ReleaseBound).ConfigureAwait(false);
        if (failure is null)
        {
            _watcher?.Release();
        }
        else if (_logger is not null)
        {
            SlurmLog.ReleaseUnconfirmed(_logger, JobId, failure);
        }
    }

    /// <summary>srun's options for one worker's step on <paramref name="node"/>, before the user's own.</summary>
    internal IReadOnlyList<string> StepArguments(string node, int cpusPerWorker) =>
    [
        $"--jobid={JobId}",
        // Steps of one allocation share its CPUs: without it a second step waits ("pending job step"), and inside
        // sbatch the host's own step holds them.
        "--overlap",
        "--nodes=1",
        "--ntasks=1",
        $"--nodelist={node}",
        $"--cpus-per-task={cpusPerWorker.ToString(CultureInfo.InvariantCulture)}",
        // Keeps srun's informational lines ("Force Terminated StepId=...") out of the worker's stderr; its error lines
        // ("task 0: Segmentation fault", "Node failure on X") still come.
        "--quiet",
        "--job-name=processpool-worker",
    ];

    /// <summary>sbatch's arguments for an owned allocation: ours first, the user's after them (sbatch takes the last of a repeated option).</summary>
    internal static IReadOnlyList<string> SbatchArguments(SlurmLauncher options)
    {
        var arguments = new List<string>
        {
            "--parsable",
            $"--job-name=processpool-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}",
            // No slurm-<job>.out in the user's directory: the holder job prints nothing worth keeping.
            "--output=/dev/null",
            $"--nodes={(options.Nodes ?? 1).ToString(CultureInfo.InvariantCulture)}",
            $"--cpus-per-task={options.CpusPerWorker.ToString(CultureInfo.InvariantCulture)}",
            // A lost node must cost only its own workers. Measured here (slurmd of one of two nodes killed, ~29 s until
            // Slurm calls it a node failure): by default the whole job is requeued (PENDING, reason BeginTime), every
            // step on every node gone; with --no-kill --no-requeue it goes on RUNNING on the other node, its steps there
            // untouched and new steps starting, NodeList shrunk to the survivors. (Losing the node of the batch script
            // still ends the job.)
            "--no-kill",
            "--no-requeue",
        };
        // Without a number of workers per node, whole nodes: their CPUs over CpusPerWorker give the workers.
        arguments.Add(options.WorkersPerNode is { } perNode ? $"--ntasks-per-node={perNode.ToString(CultureInfo.InvariantCulture)}" : "--exclusive");
        if (options.Partition is { } partition)
        {
            arguments.Add($"--partition={partition}");
        }

        if (options.TimeLimit is { } limit)
        {
            arguments.Add($"--time={FormatTime(limit)}");
        }

        if (options.Account is { } account)
        {
            arguments.Add($"--account={account}");
        }

        arguments.AddRange(options.SbatchArguments);
        // The holder: a script that only waits, so that the allocation lasts until it is cancelled or its time is up.
        // Not `sleep infinity`, which is GNU's.
        arguments.Add("--wrap=while :; do sleep 3600; done");
        return arguments;
    }

    /// <summary>sbatch's <c>--time</c>: days-hours:minutes:seconds, rounded up to a whole second.</summary>
    internal static string FormatTime(TimeSpan limit)
    {
        long seconds = Math.Max(1, (long)Math.Ceiling(limit.TotalSeconds));
        return string.Create(CultureInfo.InvariantCulture, $"{seconds / 86400}-{seconds / 3600 % 24:00}:{seconds / 60 % 60:00}:{seconds % 60:00}");
    }

    private static async Task<SlurmAllocation> UseExistingAsync(string jobId, SlurmLauncher options, ILogger? logger, CancellationToken cancellationToken)
    {
        SlurmJobInfo job = await ShowJobAsync(jobId, cancellationToken).ConfigureAwait(false)
            ?? throw new WorkerStartException($"SLURM_JOB_ID is {jobId}, but Slurm knows no such job: is this process in an allocation of this cluster?");
        if (!job.IsRunning)
        {
            throw new WorkerStartException($"SLURM_JOB_ID is {jobId}, but that job is {job.State} (reason {job.Reason}), not running.");
        }

        SlurmAllocation allocation = await CreateAsync(jobId, owned: false, job, options, watcher: null, logger, cancellationToken).ConfigureAwait(false);
        if (logger is not null)
        {
            SlurmLog.Inside(logger, jobId, string.Join(',', allocation.Nodes), allocation.Slots);
        }

        return allocation;
    }

    private static async Task<SlurmJobInfo> WaitUntilRunningAsync(string jobId, TimeSpan timeout, ILogger? logger, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string? reported = null;
        while (true)
        {
            SlurmJobInfo job = await ShowJobAsync(jobId, cancellationToken).ConfigureAwait(false)
                ?? throw new WorkerStartException($"Slurm job {jobId} disappeared from the queue before it ran.");
            if (job.IsRunning)
            {
                return job;
            }

            if (!job.IsPending)
            {
                throw new WorkerStartException($"Slurm job {jobId} ended before it ran: {job.State}, reason {job.Reason}.");
            }

            string now = job.State + " " + job.Reason;
            if (now != reported)
            {
                reported = now;
                if (logger is not null)
                {
                    SlurmLog.Pending(logger, jobId, job.State, job.Reason, clock.Elapsed);
                }
            }

            TimeSpan left = timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new WorkerStartException(
                    $"Slurm did not start job {jobId} within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s: it is {job.State}, reason {job.Reason}{Explain(job.Reason)}. The job was cancelled.");
            }

            await Task.Delay(left < PollInterval ? left : PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    // The pending reasons a user meets most (squeue(1) lists them all).
    private static string Explain(string reason) => reason switch
    {
        "Resources" => " (the nodes it needs are busy)",
        "Priority" => " (jobs of higher priority are ahead of it)",
        "PartitionConfig" or "PartitionNodeLimit" => " (the request exceeds what the partition holds: more nodes or CPUs than it has)",
        "PartitionDown" or "PartitionInactive" => " (the partition is not accepting jobs)",
        "PartitionTimeLimit" => " (the time limit exceeds the partition's)",
        _ when reason.StartsWith("ReqNodeNotAvail", StringComparison.Ordinal) => " (nodes it needs are down or drained)",
        _ when reason.StartsWith("Assoc", StringComparison.Ordinal) || reason.StartsWith("QOS", StringComparison.Ordinal) => " (a limit of the account or QOS)",
        _ => "",
    };

    private static async Task<SlurmAllocation> CreateAsync(
        string jobId, bool owned, SlurmJobInfo job, SlurmLauncher options, AllocationWatcher? watcher, ILogger? logger,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<string> nodes = await HostnamesAsync(job.NodeList, cancellationToken).ConfigureAwait(false);
        if (nodes.Count == 0)
        {
            throw new WorkerStartException($"Slurm job {jobId} runs, but on no node that scontrol lists (NodeList \"{job.NodeList}\").");
        }

        int slots;
        if (options.WorkersPerNode is { } perNode)
        {
            slots = nodes.Count * perNode;
        }
        else if (owned)
        {
            // Whole nodes (--exclusive): each node's CPUs, as the job's detail lists them per group of nodes, over CpusPerWorker.
            slots = 0;
            foreach ((string group, int cpus) in job.CpusPerNodeGroup)
            {
                int count = (await HostnamesAsync(group, cancellationToken).ConfigureAwait(false)).Count;
                slots += count * Math.Max(1, cpus / options.CpusPerWorker);
            }

            slots = Math.Max(slots, nodes.Count);
        }
        else
        {
            slots = Math.Max(job.NumTasks, nodes.Count);
        }

        IReadOnlyDictionary<string, string> addresses = await NodeAddressesAsync(job.NodeList, cancellationToken).ConfigureAwait(false);
        return new SlurmAllocation(jobId, owned, nodes, addresses, slots, options, watcher, logger);
    }

    /// <summary>The job's state, or null when Slurm no longer knows it (purged after it ended).</summary>
    private static async Task<SlurmJobInfo?> ShowJobAsync(string jobId, CancellationToken cancellationToken)
    {
        SlurmCommandResult result = await SlurmCommand.RunAsync("scontrol", ["show", "job", "-d", "-o", jobId], cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            return result.StandardError.Contains("Invalid job id", StringComparison.Ordinal) ? null : throw new WorkerStartException(result.Describe());
        }

        string line = result.StandardOutput.Trim();
        try
        {
            return SlurmJobInfo.Parse(line);
        }
        catch (FormatException e)
        {
            throw new WorkerStartException($"Could not read scontrol's answer about job {jobId}: {e.Message}", e);
        }
    }

    private static async Task<IReadOnlyList<string>> HostnamesAsync(string nodeList, CancellationToken cancellationToken)
    {
        string output = await SlurmCommand.RunCheckedAsync("scontrol", ["show", "hostnames", nodeList], cancellationToken).ConfigureAwait(false);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    // NodeName=ppnode1 ... NodeAddr=10.213.77.11 ..., one line per node with -o.
    private static async Task<IReadOnlyDictionary<string, string>> NodeAddressesAsync(string nodeList, CancellationToken cancellationToken)
    {
        string output = await SlurmCommand.RunCheckedAsync("scontrol", ["show", "node", "-o", nodeList], cancellationToken).ConfigureAwait(false);
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            string? address = null;
            foreach (string pair in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (pair.StartsWith("NodeName=", StringComparison.Ordinal))
                {
                    name = pair["NodeName=".Length..];
                }
                else if (pair.StartsWith("NodeAddr=", StringComparison.Ordinal))
                {
                    address = pair["NodeAddr=".Length..];
                }
            }

            if (name is not null && address is not null)
            {
                addresses[name] = address;
            }
        }

        return addresses;
    }

    /// <summary>scancel, then wait until squeue no longer lists the job (it lists it while COMPLETING). Null when it is gone.</summary>
    private static async Task<string?> CancelAndWaitAsync(string jobId, TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            SlurmCommandResult cancel = await SlurmCommand.RunAsync("scancel", [jobId], timeout.Token, bound).ConfigureAwait(false);
            while (true)
            {
                SlurmCommandResult queue = await SlurmCommand.RunAsync("squeue", ["-h", "-j", jobId, "-o", "%T"], timeout.Token, bound).ConfigureAwait(false);
                // A purged job: "Invalid job id specified" and exit 1; an ended one not yet purged: nothing printed.
                if (queue.StandardOutput.Trim().Length == 0 && (queue.ExitCode == 0 || queue.StandardError.Contains("Invalid job id", StringComparison.Ordinal)))
                {
                    return null;
                }

                if (queue.ExitCode != 0)
                {
                    return queue.Describe();
                }

                if (cancel.ExitCode != 0)
                {
                    return cancel.Describe();
                }

                await Task.Delay(PollInterval / 2, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return $"still in the queue {bound.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s after scancel";
        }
        catch (WorkerStartException e)
        {
            return e.Message;
        }
    }

    /// <summary>Best effort, for the paths that already fail: the job is cancelled, nothing is waited for, nothing thrown.</summary>
    private static async Task CancelQuietlyAsync(string jobId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(SlurmCommand.DefaultTimeout);
            _ = await SlurmCommand.RunAsync("scancel", [jobId], timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WorkerStartException or OperationCanceledException)
        {
            // The caller's exception says what went wrong; the watcher (if any) still cancels the job at exit.
        }
    }
}
