using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using CliWrap;
using CliWrap.Buffered;

namespace Pool.Bench;

/// <summary>What a figure needs beside its value to be compared with another run's.</summary>
internal sealed record RunInfo(Machine Machine, DateTimeOffset Timestamp, string? Commit, bool Quick, string RepoRoot)
{
    public static RunInfo Detect(bool quick)
    {
        string root = FindRepoRoot();
        return new RunInfo(Machine.Detect(), DateTimeOffset.UtcNow, GitCommit(root), quick, root);
    }

    public string DefaultOutPath() => Path.Combine(
        RepoRoot, "artifacts", "bench", $"results-{Timestamp.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}.jsonl");

    /// <summary>The directory holding ProcessPool.sln above the bench's output, else the current directory.</summary>
    public static string FindRepoRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ProcessPool.sln")))
            {
                return directory.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    /// <summary>HEAD's hash, with "-dirty" when tracked files differ from it; null without git.</summary>
    private static string? GitCommit(string root) =>
        Git(root, "rev-parse", "HEAD") is { Length: > 0 } head
            ? head + (Git(root, "status", "--porcelain", "--untracked-files=no") is { Length: > 0 } ? "-dirty" : "")
            : null;

    private static string? Git(string root, params string[] arguments)
    {
        try
        {
            // Once, at the start of a run, before anything is measured: blocking here is the outermost call.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            BufferedCommandResult git = Cli.Wrap("git").WithArguments(["-C", root, .. arguments]).WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(timeout.Token).Task.GetAwaiter().GetResult();
            return git.ExitCode == 0 ? git.StandardOutput.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no git on this machine: the figures simply carry no commit
        }
        catch (OperationCanceledException)
        {
            return null; // git hung (a lock, a prompt): no commit rather than no run
        }
    }
}

/// <summary>The machine a run was measured on.</summary>
internal sealed record Machine(string Host, int Cores, string Cpu, string Os, string Runtime)
{
    public static Machine Detect() => new(
        Environment.MachineName, Environment.ProcessorCount, CpuModel(), RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription);

    private static string CpuModel()
    {
        const string CpuInfo = "/proc/cpuinfo";
        if (File.Exists(CpuInfo))
        {
            foreach (string line in File.ReadLines(CpuInfo))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is int colon and > 0)
                {
                    return line[(colon + 1)..].Trim();
                }
            }
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
