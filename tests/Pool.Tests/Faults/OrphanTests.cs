using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pool.Tests.Faults;

/// <summary>No worker outlives its host, nor a process a task started outlives Terminate.</summary>
public partial class OrphanTests
{
    [Fact(Timeout = 60_000)]
    public async Task Workers_exit_within_two_seconds_of_their_host_being_killed_while_busy()
    {
        using Process process = StartBusyHost(defaultSigInt: false);
        int[] workers = [];
        try
        {
            workers = await BusyWorkersAsync(process);
            process.Kill(entireProcessTree: false);
            AssertExitWithin(workers, TimeSpan.FromSeconds(2));
        }
        finally
        {
            LeaveNothing(process, workers);
        }
    }

    public static TheoryData<int> HostSignals => [SigKill, SigTerm, SigInt];

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(HostSignals))]
    public async Task No_file_of_the_pool_nor_runtime_file_of_its_workers_is_left_after_its_host_is_ended_by_a_signal(int signal)
    {
        using Process process = StartBusyHost(defaultSigInt: signal == SigInt);
        int[] workers = [];
        try
        {
            workers = await BusyWorkersAsync(process);
            // A runtime file is named by pid and start time: files of an earlier process with the same pid are not these.
            string[] runtimeFiles = [.. workers.Select(worker => $"{worker}-{StartTime(worker)}-*")];
            Kill(process.Id, signal).Should().Be(0);
            (await Task.Run(() => process.WaitForExit(TestPools.Bound))).Should().BeTrue();
            AssertExitWithin(workers, TimeSpan.FromSeconds(5));

            string[] left =
            [
                .. Directory.GetFiles(Pool.Contracts.ProgressCell.Directory, Pool.Contracts.ProgressCell.FilePrefix(process.Id) + "*"),
                .. runtimeFiles.SelectMany(name => Directory.GetFiles(Path.GetTempPath(), "dotnet-diagnostic-" + name)
                    .Concat(Directory.GetFiles(Path.GetTempPath(), "clr-debug-pipe-" + name))),
            ];
            left.Should().BeEmpty();
            File.ReadAllText("/proc/net/unix").Should().NotContain($"@pp-{process.Id}-", "the pool's sockets are abstract, gone with their processes");
        }
        finally
        {
            LeaveNothing(process, workers);
        }
    }

    /// <summary>A process's start time in clock ticks after boot (/proc/PID/stat field 22), as the runtime puts it in its files' names.</summary>
    private static string StartTime(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
    }

    private const int SigKill = 9;
    private const int SigTerm = 15;
    private const int SigInt = 2;

    /// <summary>The test host (tests/Pool.TestHost) with two workers busy in user code; SIGINT restored to its default when asked (a non-interactive shell may pass it on ignored).</summary>
    private static Process StartBusyHost(bool defaultSigInt)
    {
        string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var start = new ProcessStartInfo(defaultSigInt ? "env" : dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (defaultSigInt)
        {
            start.ArgumentList.Add("--default-signal=INT");
            start.ArgumentList.Add(dotnet);
        }

        start.ArgumentList.Add(host);
        start.ArgumentList.Add("2");
        return Process.Start(start)!;
    }

    /// <summary>Waits until both workers of the test host run user code; returns their pids.</summary>
    private static async Task<int[]> BusyWorkersAsync(Process process)
    {
        int[] workers = [];
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
        return workers;
    }

    private static void AssertExitWithin(int[] workers, TimeSpan bound)
    {
        Stopwatch clock = Stopwatch.StartNew();
        foreach (int worker in workers)
        {
            TimeSpan left = bound - clock.Elapsed;
            WaitForExit(worker, left > TimeSpan.Zero ? left : TimeSpan.Zero).Should().BeTrue($"worker {worker} must exit within {bound.TotalSeconds} s of its host's death");
        }
    }

    /// <summary>Whatever happened, leave nothing behind.</summary>
    private static void LeaveNothing(Process process, int[] workers)
    {
        process.Kill(entireProcessTree: true);
        foreach (int worker in workers.Where(ProcessTreeIsAlive))
        {
            Process.GetProcessById(worker).Kill();
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
    private static bool WaitForExit(int pid, TimeSpan timeout)
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

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
