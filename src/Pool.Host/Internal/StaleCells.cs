using System.Globalization;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// A pool leaves no file once its workers are connected (its sockets are abstract; each progress cell is deleted as
/// soon as its worker has mapped it). A host killed in the moment between creating a cell and its worker connecting
/// leaves that one cell; the first pool of each later process removes the cells of hosts that are no longer alive
/// (their names carry the host's pid: <see cref="ProgressCell.FilePrefix"/>).
/// </summary>
internal static class StaleCells
{
    private static int s_swept;

    public static void SweepOnce()
    {
        if (Interlocked.Exchange(ref s_swept, 1) == 0)
        {
            Sweep();
        }
    }

    /// <summary>Removes the cell files of hosts that are no longer alive.</summary>
    internal static void Sweep()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            foreach (string path in Directory.EnumerateFiles(ProgressCell.Directory, "pp-*-*.cell"))
            {
                string name = Path.GetFileName(path);
                int end = name.IndexOf('-', 3);
                if (end > 3 && int.TryParse(name.AsSpan(3, end - 3), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) &&
                    pid != Environment.ProcessId && !ProcessTree.IsAlive(pid))
                {
                    ProgressCell.TryDelete(path);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory cannot be listed: nothing this pool made is there either.
        }
    }
}
