using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CliWrap;
using CliWrap.Buffered;
using Pool.Internal;

namespace Pool.Tests.Faults;

/// <summary>Only the processes a pool started become its workers; nobody else can stop it or read its work.</summary>
public partial class WorkerLinkTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_process_that_connects_before_the_worker_receives_nothing_and_the_pool_works()
    {
        var log = new LossLog();
        ConcurrentBag<Task<int>> rogues = RogueBeforeEachWorker();
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: log.Attach(new ProcessPoolOptions()));
        int[] results = await pool.MapAsync(Functions.Square, Enumerable.Range(0, 1000)).Within();

        results.Should().Equal(Enumerable.Range(0, 1000).Select(i => i * i));
        rogues.Should().HaveCount(2);
        foreach (Task<int> rogue in rogues)
        {
            (await rogue.Within()).Should().Be(0, "a refused connection is closed before anything is sent");
        }

        log.ToString().Should().Contain("Refused a connection").And.Contain($"pid {Environment.ProcessId}");
    }

    [Fact(Timeout = 90_000)]
    public async Task A_process_that_races_every_replacement_costs_no_start_and_no_task()
    {
        var log = new LossLog();
        ConcurrentBag<Task<int>> rogues = RogueBeforeEachWorker();
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: log.Attach(new ProcessPoolOptions()));
        // Five crashes, more than the three failed starts in a row that would stop the pool.
        for (int crash = 0; crash < 5; crash++)
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [1, (int)CrashKind.Exit1, 3], chunkSize: 1).Within();
            outcomes[1].Exception.Should().BeOfType<WorkerCrashedException>();
            outcomes[0].Value.Should().Be(2, log.ToString());
            outcomes[2].Value.Should().Be(6, log.ToString());
            await pool.WhenAllWorkersAsync().Within();
        }

        rogues.Should().HaveCountGreaterThanOrEqualTo(7, "two workers and five replacements");
        foreach (Task<int> rogue in rogues)
        {
            (await rogue.Within()).Should().Be(0);
        }

        log.ToString().Should().NotContain("failed to start");
    }

    [RootFact(Timeout = 90_000)]
    public async Task Under_umask_000_another_user_can_neither_connect_nor_open_a_cell()
    {
        string user = EnsureOtherUser();
        var rogues = new ConcurrentBag<(Task<string> Output, string CellMode, string CellRead)>();
        WorkerListener.BeforeWorkerStarts.Value = async (address, cellPath) =>
        {
            string mode = OperatingSystem.IsWindows() ? string.Empty : File.GetUnixFileMode(cellPath).ToString();
            string read = await RunAsAsync(user, "cat", cellPath);
            rogues.Add((await ConnectAsUserAsync(user, address), mode, read));
        };

        uint previous = SetUmask(0);
        ProcessPool pool;
        try
        {
            pool = await TestPools.StartAsync(workers: 2);
        }
        finally
        {
            SetUmask(previous);
        }

        await using (pool)
        {
            (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 100)).Within()).Should().Equal(Enumerable.Range(0, 100).Select(i => i * i));
        }

        rogues.Should().HaveCount(2);
        foreach ((Task<string> output, string mode, string read) in rogues)
        {
            mode.Should().Be((UnixFileMode.UserRead | UnixFileMode.UserWrite).ToString(), "a cell is created 0600 whatever the umask");
            read.Should().Contain("Permission denied");
            (await output.Within()).Should().Contain("received 0");
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task More_workers_than_the_limit_are_refused_at_construction_naming_the_limit()
    {
        Func<Task> start = () => ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 100_000 });

        (await start.Should().ThrowAsync<ArgumentOutOfRangeException>())
            .Which.Message.Should().Contain("Workers = 100000").And.Contain($"{ProcessPoolOptions.MaxWorkersPerCore * Environment.ProcessorCount}");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_start_that_fails_part_way_kills_the_workers_it_started_and_leaves_no_file()
    {
        string mark = Guid.NewGuid().ToString("N");
        var cells = new ConcurrentQueue<string>();
        int starts = 0;
        WorkerListener.BeforeWorkerStarts.Value = (_, cell) =>
        {
            cells.Enqueue(cell);
            // The third worker cannot be started, as under a process limit; the first two can.
            return Interlocked.Increment(ref starts) == 3 ? throw new WorkerStartException("no more processes (the test's stand-in for EAGAIN)") : Task.CompletedTask;
        };
        var options = new ProcessPoolOptions { Workers = 3, StartTimeout = TimeSpan.FromSeconds(20), WorkerEnvironment = new Dictionary<string, string?> { ["POOL_TEST_MARK"] = mark } };
        Stopwatch clock = Stopwatch.StartNew();

        Func<Task> start = () => ProcessPool.StartAsync(options);

        await start.Should().ThrowAsync<WorkerStartException>().WithMessage("*no more processes*");
        clock.Elapsed.Should().BeLessThan(options.StartTimeout);
        cells.Should().HaveCount(3);
        cells.Where(File.Exists).Should().BeEmpty("no cell of a failed start is left");
        MarkedProcesses(mark).Where(ProcessTree.IsAlive).Should().BeEmpty("every worker the failed start began is killed");
    }

    [RootFact(Timeout = 120_000)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_host_under_a_process_limit_ends_with_WorkerStartException_or_the_runtime_abort_and_leaves_no_worker()
    {
        // RLIMIT_NPROC counts a user's threads and does not bind root: the test host runs as the other user, with room
        // for itself and a few workers' threads but not for eight workers (20 is too few for the host alone).
        string user = EnsureOtherUser();
        // The other user may not be able to read the build output where it is (a clone in a 0700 directory): a copy
        // of it in a directory of its own that every user can read.
        string copy = Directory.CreateTempSubdirectory("pp-nproc-").FullName;
        File.SetUnixFileMode(copy, (UnixFileMode)0b111_101_101);
        try
        {
            CopyTree(AppContext.BaseDirectory, copy);
            await HostUnderProcessLimitAsync(user, Path.Combine(copy, "Pool.TestHost.dll"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    private static async Task HostUnderProcessLimitAsync(string user, string host)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        BufferedCommandResult result = await Cli.Wrap("runuser")
            .WithArguments(["-u", user, "--", "prlimit", "--nproc=40", dotnet, host, "8"])
            .WithEnvironmentVariables(env => env.Set("DOTNET_CLI_HOME", Path.GetTempPath()))
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync(bound.Token);

        // Either the pool's start fails with its own error, or the host itself cannot make a thread and the runtime
        // aborts it ("Out of memory.": nothing a library can catch): which one depends on who asks for a thread first.
        // A worker whose runtime could not start waits forever before Main; its parent-death signal, set before exec,
        // ends it with its host.
        result.ExitCode.Should().NotBe(0);
        bool startFailed = result.StandardError.Contains("WorkerStartException", StringComparison.Ordinal);
        (startFailed || result.StandardError.StartsWith("Out of memory.", StringComparison.Ordinal)).Should().BeTrue(result.StandardError);
        string[] workers = (await RunAsAsync("root", "pgrep", "-u", user, "-f", "Pool.Worker.dll")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (string worker in workers)
        {
            OrphanTests.WaitForExit(int.Parse(worker, System.Globalization.CultureInfo.InvariantCulture), TimeSpan.FromSeconds(2))
                .Should().BeTrue($"worker {worker} must not outlive its host");
        }

        if (startFailed)
        {
            // A host that aborted may leave the cell of a worker that had not connected yet: the next pool sweeps it.
            string cellsLeft = await RunAsAsync("root", "find", Pool.Contracts.ProgressCell.Directory, "-maxdepth", "1", "-user", user, "-name", "pp-*");
            cellsLeft.Trim().Should().BeEmpty("no cell of a failed start is left");
        }
    }

    /// <summary>Copies the files under <paramref name="from"/> to <paramref name="to"/>, readable by every user.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void CopyTree(string from, string to)
    {
        foreach (string directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            string made = Path.Combine(to, Path.GetRelativePath(from, directory));
            Directory.CreateDirectory(made);
            File.SetUnixFileMode(made, (UnixFileMode)0b111_101_101);
        }

        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string made = Path.Combine(to, Path.GetRelativePath(from, file));
            File.Copy(file, made);
            File.SetUnixFileMode(made, (UnixFileMode)0b110_100_100);
        }
    }

    /// <summary>Processes below this one whose environment holds <paramref name="mark"/>.</summary>
    private static IEnumerable<int> MarkedProcesses(string mark) =>
        ProcessTree.Descendants(Environment.ProcessId).Where(pid =>
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/environ").Contains(mark, StringComparison.Ordinal);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        });

    /// <summary>For the pools this test starts: a connection from this process to each worker's socket before the worker starts; each task says how many bytes that connection received.</summary>
    private static ConcurrentBag<Task<int>> RogueBeforeEachWorker()
    {
        var rogues = new ConcurrentBag<Task<int>>();
        WorkerListener.BeforeWorkerStarts.Value = (address, _) =>
        {
            rogues.Add(ConnectFirstAsync(address));
            return Task.CompletedTask;
        };

        return rogues;
    }

    /// <summary>Connects to an abstract socket from this process and reads until the other end closes; returns the bytes received.</summary>
    private static async Task<int> ConnectFirstAsync(string address)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint("\0" + address[1..]));
        byte[] buffer = new byte[4096];
        int total = 0;
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                total += read;
            }
        }
        catch (SocketException)
        {
            // A reset: the host closed the connection.
        }

        return total;
    }

    /// <summary>Starts a process of <paramref name="user"/> that connects to the socket and says so; awaited until it has connected.</summary>
    private static async Task<Task<string>> ConnectAsUserAsync(string user, string address)
    {
        string script = "import socket,sys\n" +
            "s=socket.socket(socket.AF_UNIX)\n" +
            $"s.connect('\\0{address[1..]}')\n" +
            "print('connected',flush=True)\n" +
            "n=0\n" +
            "while True:\n" +
            "    d=s.recv(4096)\n" +
            "    if not d: break\n" +
            "    n+=len(d)\n" +
            "print('received',n,flush=True)\n";
        var start = new ProcessStartInfo("runuser") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in (string[])["-u", user, "--", "python3", "-c", script])
        {
            start.ArgumentList.Add(argument);
        }

        Process process = Process.Start(start)!;
        string? first = await process.StandardOutput.ReadLineAsync().Within();
        if (first != "connected")
        {
            throw new InvalidOperationException($"The other user's process did not connect: {first} {await process.StandardError.ReadToEndAsync()}");
        }

        return FinishAsync(process);

        static async Task<string> FinishAsync(Process process)
        {
            using (process)
            {
                string rest = await process.StandardOutput.ReadToEndAsync();
                await process.WaitForExitAsync();
                return rest;
            }
        }
    }

    private static async Task<string> RunAsAsync(string user, params string[] command)
    {
        var start = new ProcessStartInfo("runuser") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in (string[])["-u", user, "--", .. command])
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return await output + error;
    }

    /// <summary>A second user for the test, made once (the tests run as root).</summary>
    private static string EnsureOtherUser()
    {
        const string user = "pptestrogue";
        using Process check = Process.Start(new ProcessStartInfo("id", user) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        check.WaitForExit();
        if (check.ExitCode != 0)
        {
            using Process add = Process.Start(new ProcessStartInfo("useradd", $"--no-create-home --shell /usr/sbin/nologin {user}") { RedirectStandardError = true })!;
            add.WaitForExit();
            add.ExitCode.Should().Be(0, add.StandardError.ReadToEnd());
        }

        return user;
    }

    private static uint SetUmask(uint mask) => Umask(mask);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);
}

/// <summary>A test that needs root (to create a user, to run a process as another one), with the tools it uses; skipped with the reason otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Skip = "Needs root on Linux: it creates a second user and runs processes as that user.";
        }
        else if (!ExistsOnPath("useradd") || !ExistsOnPath("runuser") || !ExistsOnPath("python3"))
        {
            Skip = "Needs useradd, runuser and python3 on PATH.";
        }
    }

    private static bool ExistsOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(directory => File.Exists(Path.Combine(directory, name))) ||
        File.Exists("/usr/sbin/" + name) || File.Exists("/sbin/" + name);
}
