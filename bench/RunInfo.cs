using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

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
        var info = new ProcessStartInfo("git", ["-C", root, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using Process git = Process.Start(info)!;
            string output = git.StandardOutput.ReadToEnd().Trim();
            return git.WaitForExit(5000) && git.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no git on this machine: the figures simply carry no commit
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
