using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using CliWrap;

namespace Pool.Tests.Faults;

/// <summary>No worker outlives its host, nor a process a task started outlives Terminate.</summary>
public partial class OrphanTests
{
    [Fact(Timeout = 60_000)]
    public async Task Workers_exit_within_two_seconds_of_their_host_being_killed_while_busy()
    {
        await using var host = BusyHost.Start(defaultSigInt: false);
        int[] workers = await host.Busy.Within();
        workers.Should().HaveCount(2);
        // The host alone, as a SIGKILL would: its workers must notice by themselves.
        Kill(host.ProcessId, SigKill).Should().Be(0);
        AssertExitWithin(workers, TimeSpan.FromSeconds(2));
    }

    public static TheoryData<int> HostSignals => [SigKill, SigTerm, SigInt];

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(HostSignals))]
    public async Task No_file_of_the_pool_nor_runtime_file_of_its_workers_is_left_after_its_host_is_ended_by_a_signal(int signal)
    {
        await using var host = BusyHost.Start(defaultSigInt: signal == SigInt);
        int[] workers = await host.Busy.Within();
        workers.Should().HaveCount(2);
        // A runtime file is named by pid and start time: files of an earlier process with the same pid are not these.
        string[] runtimeFiles = [.. workers.Select(worker => $"{worker}-{StartTime(worker)}-*")];
        Kill(host.ProcessId, signal).Should().Be(0);
        await host.Ended.Within();
        AssertExitWithin(workers, TimeSpan.FromSeconds(5));

        string[] left =
        [
            .. Directory.GetFiles(Pool.Contracts.ProgressCell.Directory, Pool.Contracts.ProgressCell.FilePrefix(host.ProcessId) + "*"),
            .. runtimeFiles.SelectMany(name => Directory.GetFiles(Path.GetTempPath(), "dotnet-diagnostic-" + name)
                .Concat(Directory.GetFiles(Path.GetTempPath(), "clr-debug-pipe-" + name))),
        ];
        left.Should().BeEmpty();
        File.ReadAllText("/proc/net/unix").Should().NotContain($"@pp-{host.ProcessId}-", "the pool's sockets are abstract, gone with their processes");
    }

    [Fact(Timeout = 60_000)]
    public async Task Ctrl_C_in_a_terminal_reaches_a_host_that_handles_it_and_not_its_workers()
    {
        // A terminal's Ctrl+C is a SIGINT to its whole foreground process group. The workers were in the host's group and
        // died of it (exit code 130) even when the host handled it to shut down gracefully: the busy tasks failed with
        // WorkerCrashedException (SIGINT). The host runs here in a session of its own (setsid), and the SIGINT goes to its
        // group, as from a terminal; env restores SIGINT's default, which a non-interactive shell may pass on ignored.
        string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var busy = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int running = 0;
        using var cleanup = new CancellationTokenSource();
        CommandTask<CommandResult> run = Cli.Wrap("env").WithArguments(["--default-signal=INT", "setsid", dotnet, host, "ctrl-c"])
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(line =>
            {
                lines.Enqueue(line);
                if (line.StartsWith("running ", StringComparison.Ordinal) && Interlocked.Increment(ref running) == 2)
                {
                    busy.TrySetResult();
                }
            }))
            .ExecuteAsync(cleanup.Token);
        try
        {
            await busy.Task.Within();
            int group = run.ProcessId;
            File.ReadAllText($"/proc/{group}/stat").Split(") ")[1].Split(' ')[2].Should().Be(group.ToString(System.Globalization.CultureInfo.InvariantCulture), "the host leads a process group of its own");

            Kill(-group, SigInt).Should().Be(0);
            await run.Task.WaitAsync(TimeSpan.FromSeconds(30));

            lines.Should().Contain("interrupted");
            lines.Should().Contain("results 0,1", "the busy tasks finish: " + string.Join(" | ", lines));
        }
        finally
        {
            await cleanup.CancelAsync();
            await ((Task)run.Task).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
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

    /// <summary>
    /// The test host (tests/Pool.TestHost) run by CliWrap, with two workers busy in user code. It prints its workers'
    /// pids, then "running" once per busy task; CliWrap hands over each line as it comes. Disposing leaves nothing
    /// behind: cancelling makes CliWrap kill the host's tree, and any worker still alive is killed.
    /// </summary>
    private sealed class BusyHost : IAsyncDisposable
    {
        private readonly TaskCompletionSource<int[]> _busy = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _cleanup = new();
        private readonly StringBuilder _errors = new();
        private readonly CommandTask<CommandResult> _run;
        private int[] _workers = [];
        private int _running;

        private BusyHost(bool defaultSigInt)
        {
            string host = Path.Combine(AppContext.BaseDirectory, "Pool.TestHost.dll");
            string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            // SIGINT restored to its default when asked: a non-interactive shell may pass it on ignored.
            Command command = defaultSigInt
                ? Cli.Wrap("env").WithArguments(["--default-signal=INT", dotnet, host, "2"])
                : Cli.Wrap(dotnet).WithArguments([host, "2"]);
            _run = command
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(PipeTarget.ToDelegate(OnLine))
                .WithStandardErrorPipe(PipeTarget.ToStringBuilder(_errors))
                .ExecuteAsync(_cleanup.Token);
            Ended = _run.Task.ContinueWith(
                _ => _busy.TrySetException(new InvalidOperationException($"The test host ended early: {_errors}")),
                CancellationToken.None,
                TaskContinuationOptions.None,
                TaskScheduler.Default);
        }

        public int ProcessId => _run.ProcessId;

        /// <summary>Completes with the workers' pids once both run user code.</summary>
        public Task<int[]> Busy => _busy.Task;

        /// <summary>Completes when the host has exited.</summary>
        public Task Ended { get; }

        public static BusyHost Start(bool defaultSigInt) => new(defaultSigInt);

        private void OnLine(string line)
        {
            if (line.StartsWith("pids ", StringComparison.Ordinal))
            {
                _workers = [.. line[5..].Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture))];
            }
            else if (line.StartsWith("running ", StringComparison.Ordinal) && ++_running == 2)
            {
                _busy.TrySetResult(_workers);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _cleanup.CancelAsync();
            try
            {
                await _run;
            }
            catch (OperationCanceledException)
            {
                // The host was still running and has been killed: what the cancellation is for.
            }

            await Ended;
            foreach (int worker in _workers.Where(ProcessTreeIsAlive))
            {
                Process.GetProcessById(worker).Kill();
            }

            _cleanup.Dispose();
        }
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

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
