using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Pool.Internal;

/// <summary>
/// Kills a process and every process below it. On Linux the process is stopped (SIGSTOP) before anything else, so that
/// from that instant it does no more work and sends nothing (a worker killed to stop a task could otherwise finish
/// the task and send its result, or take the next one, while its tree was listed: that took 10-65 ms), and its
/// children keep it as their parent while the descendants are listed from /proc; then each gets SIGKILL. Elsewhere
/// <see cref="Process.Kill(bool)"/> walks the tree.
/// </summary>
internal static partial class ProcessTree
{
    private const int SigKill = 9;
    private const int SigStop = 19;

    public static void Kill(Process process)
    {
        int pid;
        try
        {
            if (process.HasExited)
            {
                return;
            }

            pid = process.Id;
        }
        catch (InvalidOperationException)
        {
            // Never started, or already reaped: there is no tree to kill.
            return;
        }

        if (!OperatingSystem.IsLinux())
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited between the check and the kill.
            }
            catch (Win32Exception)
            {
                // A member exited while the tree was walked.
            }

            return;
        }

        // The pid is the process's until it is reaped, which the runtime does only once it has exited: stopped, it cannot.
        _ = SendSignal(pid, SigStop);
        IReadOnlyList<int> descendants = Descendants(pid);
        _ = SendSignal(pid, SigKill);
        foreach (int child in descendants)
        {
            if (IsAlive(child))
            {
                _ = SendSignal(child, SigKill);
            }
        }
    }

    /// <summary>Whether <paramref name="pid"/> is a live process: it exists and is not a zombie (Linux).</summary>
    public static bool IsAlive(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                return !process.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        string? stat = ReadStat(pid);
        return stat is not null && StateOf(stat) is not ('Z' or 'X');
    }

    /// <summary>Every process whose chain of parents leads to <paramref name="pid"/>, from /proc.</summary>
    public static IReadOnlyList<int> Descendants(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int candidate) ||
                ReadStat(candidate) is not { } stat || ParentOf(stat) is not { } parent)
            {
                continue;
            }

            if (!children.TryGetValue(parent, out List<int>? list))
            {
                children[parent] = list = [];
            }

            list.Add(candidate);
        }

        var result = new List<int>();
        var pending = new Queue<int>([pid]);
        while (pending.TryDequeue(out int next))
        {
            if (children.TryGetValue(next, out List<int>? list))
            {
                foreach (int child in list)
                {
                    result.Add(child);
                    pending.Enqueue(child);
                }
            }
        }

        return result;
    }

    private static string? ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    // /proc/<pid>/stat is "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    private static char StateOf(string stat) => stat[stat.LastIndexOf(')') + 2];

    private static int? ParentOf(string stat)
    {
        ReadOnlySpan<char> rest = stat.AsSpan(stat.LastIndexOf(')') + 4);
        int end = rest.IndexOf(' ');
        return end > 0 && int.TryParse(rest[..end], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ? parent : null;
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int SendSignal(int pid, int signal);
}
