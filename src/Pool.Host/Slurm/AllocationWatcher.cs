using System.Diagnostics;
using System.Globalization;

namespace Pool.Internal;

/// <summary>
/// Cancels an owned allocation when this process dies without doing it itself (SIGKILL, a crash): a small shell
/// process, detached from this one, blocked reading a pipe whose only writer is this process. The kernel closes the
/// writer when this process ends however it ends, the read returns end-of-file, and the watcher runs
/// <c>scancel</c>. <see cref="Release"/> writes a line first, which the watcher takes as "already released" and exits.
/// </summary>
/// <remarks>
/// A pipe rather than polling <c>kill -0 PID</c>: no delay, no pid reuse, and a killed host that its parent has not
/// reaped yet (a zombie, which <c>kill -0</c> still finds) counts as gone. The pipe's writer is created close-on-exec,
/// as every pipe of <see cref="Process"/>, so no worker or other child keeps it open after this process is gone.
/// Detached twice over: <c>setsid -f</c> forks it into its own session, so Ctrl+C or a closed terminal (which signal
/// this process's group) do not reach it, and its parent exits at once, so it is nobody's child here and a kill of
/// this process's tree (CliWrap, <c>Process.Kill(true)</c>) leaves it running. It ignores SIGINT, SIGHUP and SIGTERM,
/// and writes nowhere (stdout and stderr to /dev/null), so it holds no pipe of whoever reads this process's output.
/// Slurm's own means were weighed: a batch script cannot see this process (another machine), and a job that ends with
/// its controlling <c>srun</c> would need that srun to be killed with us, which is the same problem.
/// </remarks>
internal sealed class AllocationWatcher : IDisposable
{
    // $1 is the job id (digits, checked). Read one line: "released" means the host cancelled the job itself.
    private const string Script =
        "trap '' INT HUP TERM PIPE; exec >/dev/null 2>&1; " +
        "if read -r line; then exit 0; fi; " +
        "scancel \"$1\" || { sleep 2; scancel \"$1\"; }";

    private static readonly string? Setsid = Array.Find(["/usr/bin/setsid", "/bin/setsid"], File.Exists);

    // Kept, not disposed: disposing a Process closes its standard input, which is the watcher's signal to cancel.
    private readonly Process _process;
    private int _released;

    private AllocationWatcher(Process process) => _process = process;

    /// <summary>Starts the watcher of <paramref name="jobId"/>; it runs until <see cref="Release"/> or this process's end.</summary>
    /// <exception cref="WorkerStartException">It could not be started.</exception>
    public static async Task<AllocationWatcher> StartAsync(string jobId, CancellationToken cancellationToken)
    {
        if (!long.TryParse(jobId, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            throw new ArgumentException($"Not a Slurm job id: {jobId}", nameof(jobId));
        }

        var info = new ProcessStartInfo(Setsid ?? "/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
        };
        // Without setsid (not util-linux): still a separate process that ignores the terminal's signals, but in our
        // group and tree. Every Linux distribution ships setsid.
        foreach (string argument in (string[])(Setsid is null ? ["-c", Script, "sh", jobId] : ["-f", "/bin/sh", "-c", Script, "sh", jobId]))
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new WorkerStartException("Could not start the allocation's watcher (sh).");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new WorkerStartException($"Could not start the allocation's watcher ({info.FileName}): {e.Message}", e);
        }

        var watcher = new AllocationWatcher(process);
        if (Setsid is not null)
        {
            // setsid -f forks and returns at once; the watcher is its child, now adopted by init. A failure to fork
            // shows as a non-zero exit code here.
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                watcher.Release();
                throw;
            }

            if (process.ExitCode != 0)
            {
                watcher.Release();
                throw new WorkerStartException($"The allocation's watcher (setsid -f sh) exited with code {process.ExitCode}.");
            }
        }

        return watcher;
    }

    /// <summary>The job is released (or its release is this process's to finish): the watcher exits without cancelling.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        try
        {
            _process.StandardInput.WriteLine("released");
            _process.StandardInput.Flush();
        }
        catch (IOException)
        {
            // The watcher is gone already (killed by someone): there is nothing to tell it.
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <inheritdoc cref="Release"/>
    public void Dispose() => Release();
}
