using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pool.Tests.Faults;

/// <summary>No worker outlives its host, nor a process a task started outlives Terminate.</summary>
public partial class OrphanTests
{
    [Fact(Timeout = 60_000)]
    public async Task Workers_exit_within_two_seconds_of_their_host_being_killed_while_busy()
    {
        string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(host);
        start.ArgumentList.Add("2");
        using Process process = Process.Start(start)!;
        int[] workers = [];
        try
        {
            int running = 0;
            while (running < 2)
            {
                string line = await process.StandardOutput.ReadLineAsync().Within()
                    ?? throw new InvalidOperationException($"The test host ended early: {await process.StandardError.ReadToEndAsync()}");
                if (line.StartsWith("pids ", StringComparison.Ordinal))
                {
                    workers = [.. line[5..].Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture))];
                }
                else if (line.StartsWith("running ", StringComparison.Ordinal))
                {
                    running++;
                }
            }

            workers.Should().HaveCount(2);
            process.Kill(entireProcessTree: false);
            Stopwatch clock = Stopwatch.StartNew();
            foreach (int worker in workers)
            {
                TimeSpan left = TimeSpan.FromSeconds(2) - clock.Elapsed;
                WaitForExit(worker, left > TimeSpan.Zero ? left : TimeSpan.Zero).Should().BeTrue($"worker {worker} must exit within 2 s of its host's death");
            }
        }
        finally
        {
            // Whatever happened, leave nothing behind.
            process.Kill(entireProcessTree: true);
            foreach (int worker in workers.Where(ProcessTreeIsAlive))
            {
                Process.GetProcessById(worker).Kill();
            }
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Terminate_kills_the_processes_that_tasks_started()
    {
        var child = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: new ProcessPoolOptions
        {
            WorkerOutput = line =>
            {
                if (line.Text.StartsWith("child ", StringComparison.Ordinal))
                {
                    child.TrySetResult(int.Parse(line.Text[6..], System.Globalization.CultureInfo.InvariantCulture));
                }
            },
        });

        AsyncResult<int> result = pool.ApplyAsync(Functions.StartChildAndWait, 600);
        int childPid = await child.Task.Within();
        ProcessTreeIsAlive(childPid).Should().BeTrue();

        pool.Terminate();

        await result.Invoking(async r => await r).Should().ThrowAsync<PoolTerminatedException>();
        await pool.JoinAsync().Within();
        WaitForExit(childPid, TimeSpan.FromSeconds(5)).Should().BeTrue("the task's child process dies with its worker's tree");
    }

    private static bool ProcessTreeIsAlive(int pid) => Pool.Internal.ProcessTree.IsAlive(pid);

    /// <summary>Waits for any process (not only a child) to exit, on the kernel's event: pidfd_open and poll.</summary>
    internal static bool WaitForExit(int pid, TimeSpan timeout)
    {
        int fd = (int)Syscall(PidfdOpen, pid, 0);
        if (fd < 0)
        {
            return !ProcessTreeIsAlive(pid);
        }

        try
        {
            var poll = new PollFd { Fd = fd, Events = PollIn };
            return Poll(ref poll, 1, (int)timeout.TotalMilliseconds) > 0 || !ProcessTreeIsAlive(pid);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private const long PidfdOpen = 434;
    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long Syscall(long number, int pid, uint flags);

    [LibraryImport("libc", EntryPoint = "poll")]
    private static partial int Poll(ref PollFd fds, ulong count, int timeout);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
