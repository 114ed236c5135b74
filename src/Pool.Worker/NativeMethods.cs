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

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentProcessId();
}
