using System.Diagnostics;
using System.Globalization;
using CliWrap;
using CliWrap.Buffered;

namespace Pool.Tests.Slurm;

/// <summary>
/// The local cluster of eng/slurm/start-cluster.sh, as the tests see and break it: its nodes (network namespaces named
/// after them, reached through veth pairs "v&lt;node&gt;" on the bridge), the bridge's address, the queue, and the means
/// to kill a node's slurmd or cut its link and to undo both.
/// </summary>
internal sealed class SlurmCluster
{
    public const string HowToStart = "Slurm tests need a cluster: run eng/slurm/start-cluster.sh as root and export the SLURM_CONF it prints";

    private static readonly Lazy<string?> Check = new(FindProblem);
    private static readonly Lazy<SlurmCluster> Instance = new(() => new SlurmCluster());

    private SlurmCluster()
    {
        if (Unavailable is { } reason)
        {
            throw new InvalidOperationException(reason);
        }

        Conf = Environment.GetEnvironmentVariable("SLURM_CONF")!;
        StateDirectory = Path.GetDirectoryName(Conf)!;
        Nodes = Run("sinfo", "-h", "-N", "-o", "%N").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToArray();
        // SlurmctldHost=host(10.213.77.1)
        string controller = File.ReadAllLines(Conf).First(line => line.StartsWith("SlurmctldHost=", StringComparison.Ordinal));
        BridgeAddress = controller[(controller.IndexOf('(', StringComparison.Ordinal) + 1)..controller.IndexOf(')', StringComparison.Ordinal)];
    }

    /// <summary>Why the cluster cannot be used, or null when it can.</summary>
    public static string? Unavailable => Check.Value;

    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The cluster; throws with <see cref="Unavailable"/>'s reason when there is none (what CI sees instead of a skip).</summary>
    public static SlurmCluster Current => Instance.Value;

    public string Conf { get; }

    public string StateDirectory { get; }

    /// <summary>The nodes' names, in Slurm's order: ppnode1, ppnode2.</summary>
    public IReadOnlyList<string> Nodes { get; }

    /// <summary>The controller's address on the bridge, which the nodes reach (the host's address for workers).</summary>
    public string BridgeAddress { get; }

    /// <summary>The ids of the jobs squeue lists (pending, running, completing).</summary>
    public IReadOnlyList<string> JobIds() =>
        RunWith(Conf, "squeue", "-h", "-o", "%i").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The processes in <paramref name="node"/>'s network namespace (its slurmd, slurmstepd and tasks), with their command lines.</summary>
    public IReadOnlyList<(int Pid, string CommandLine)> ProcessesOf(string node)
    {
        var processes = new List<(int, string)>();
        foreach (string pid in Run("ip", "netns", "pids", Known(node)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                string commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
                processes.Add((int.Parse(pid, CultureInfo.InvariantCulture), commandLine));
            }
            catch (IOException)
            {
                // Exited since ip listed it.
            }
        }

        return processes;
    }

    /// <summary>Kills <paramref name="node"/>'s slurmd with SIGKILL (its job steps go on: slurmstepd is separate).</summary>
    public void KillSlurmd(string node)
    {
        string pidFile = Path.Combine(StateDirectory, $"slurmd-{node}.pid");
        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        Process.GetProcessById(pid).Kill();
        File.Delete(pidFile);
    }

    /// <summary>Starts <paramref name="node"/>'s slurmd again, as start-cluster.sh does, and waits for its pid file.</summary>
    public void RestartSlurmd(string node)
    {
        string pidFile = Path.Combine(StateDirectory, $"slurmd-{node}.pid");
        Run("nsenter", $"--net=/run/netns/{node}", "unshare", "--uts", "sh", "-c", $"hostname {node} && exec slurmd -N {node}");
        var clock = Stopwatch.StartNew();
        while (!(File.Exists(pidFile) && new FileInfo(pidFile).Length > 0))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new InvalidOperationException($"slurmd of {node} wrote no pid file in 10 s");
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>Cuts <paramref name="node"/> off the network: the host side of its veth pair goes down.</summary>
    public void CutLink(string node) => Run("ip", "link", "set", $"v{Known(node)}", "down");

    /// <summary>Undoes <see cref="CutLink"/>.</summary>
    public void RestoreLink(string node) => Run("ip", "link", "set", $"v{Known(node)}", "up");

    // A typo in a node's name would otherwise reach `ip` as the name of some other interface or namespace.
    private string Known(string node) =>
        Nodes.Contains(node) ? node : throw new ArgumentException($"{node} is not a node of the cluster ({string.Join(", ", Nodes)})", nameof(node));

    /// <summary>Runs a command to completion and returns its stdout; a non-zero exit code throws with its stderr.</summary>
    public static string Run(string program, params string[] arguments) => RunWith(null, program, arguments);

    /// <summary>As <see cref="Run(string, string[])"/>, with SLURM_CONF set to <paramref name="conf"/> when given.</summary>
    private static string RunWith(string? conf, string program, params string[] arguments)
    {
        BufferedCommandResult result = Cli.Wrap(program).WithArguments(arguments).WithValidation(CommandResultValidation.None)
            .WithEnvironmentVariables(conf is null ? new Dictionary<string, string?>() : new Dictionary<string, string?> { ["SLURM_CONF"] = conf })
            .ExecuteBufferedAsync().Task.WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        return result.ExitCode == 0
            ? result.StandardOutput
            : throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {result.ExitCode}: {result.StandardError}");
    }

    private static string? FindProblem()
    {
        if (!OperatingSystem.IsLinux())
        {
            return HowToStart + " (Linux only).";
        }

        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("SLURM_CONF")))
        {
            return HowToStart + " (SLURM_CONF is not set).";
        }

        try
        {
            Run("sinfo", "-h");
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or TimeoutException)
        {
            return $"{HowToStart} (sinfo failed: {e.Message.Trim()}).";
        }
    }
}
