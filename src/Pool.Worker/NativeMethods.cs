using System.Runtime.InteropServices;

namespace Pool.Worker;

internal static partial class NativeMethods
{
    private const int PrSetPdeathsig = 1;
    private const int SigKill = 9;

    /// <summary>Asks Linux to SIGKILL this process when its parent goes; false if the parent is already gone.</summary>
    public static bool DieWithParent(int expectedParent)
    {
        _ = Prctl(PrSetPdeathsig, SigKill, 0, 0, 0);
        return GetParentProcessId() == expectedParent;
    }

    /// <summary>As <see cref="DieWithParent(int)"/>, with whatever process is the parent now (a Slurm step's slurmstepd).</summary>
    public static bool DieWithParent()
    {
        int parent = GetParentProcessId();
        return parent > 1 && DieWithParent(parent);
    }

    /// <summary>
    /// Moves this process into a process group of its own, in the host's session: a terminal signals its foreground
    /// process group, so Ctrl+C (SIGINT) killed every worker even when the host handled it (Console.CancelKeyPress, the
    /// generic host's graceful shutdown). A worker ends as its host decides, or with it. Not a session of its own
    /// (setsid): Linux's autogroup schedules each session as one, and a session per worker took the host's threads
    /// from an equal share of the cores to one session's (ImapAsync of tiny tasks ran about 40 % slower).
    /// </summary>
    public static void LeaveForegroundGroup() => _ = SetProcessGroup(0, 0);

    [LibraryImport("libc", EntryPoint = "setpgid")]
    private static partial int SetProcessGroup(int pid, int processGroup);

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentProcessId();
}
