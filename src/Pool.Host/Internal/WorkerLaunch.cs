using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Pool.Internal;

/// <summary>
/// How to start a worker so that it loads the application's assemblies exactly as the application does:
/// <c>dotnet exec --runtimeconfig app.runtimeconfig.json --depsfile app.deps.json Pool.Worker.dll</c>, the
/// way dotnet/arcade's RemoteExecutor starts its children. The application's deps file comes from
/// <see cref="AppContext"/>, not from the entry assembly, which under <c>dotnet test</c> is the test host.
/// </summary>
internal sealed record WorkerLaunch(string Dotnet, string WorkerAssembly, string DepsFile, string RuntimeConfig)
{
    private const string WorkerFileName = "Pool.Worker.dll";

    private static readonly Lazy<WorkerLaunch> Located = new(() => Locate(typeof(WorkerLaunch).Assembly.Location));

    // Thread-count variables of the runtime and of common native math libraries (OpenMP, OpenBLAS, MKL),
    // set in each worker to cores / workers so that N workers do not each start a thread per core (as loky does).
    /// <summary>The workers' large object threshold, in hex as the runtime reads it: 4 MiB.</summary>
    internal const string WorkerLohThreshold = "400000";

    /// <summary>The runtime's switch for its diagnostic server and debugger support, off in workers unless the user set it.</summary>
    internal const string DiagnosticsVariable = "DOTNET_EnableDiagnostics";

    /// <summary>How deep this process is among nested pools: 0 in an application, 1 in a worker of its pool, and so on.</summary>
    internal const string DepthVariable = "PROCESSPOOL_DEPTH";

    /// <summary>The deepest a pool of worker processes may be created (loky's MAX_DEPTH is 10 too).</summary>
    internal const int MaxDepth = 10;

    /// <summary>This process's depth among nested pools (<see cref="DepthVariable"/>).</summary>
    internal static int CurrentDepth { get; } =
        int.TryParse(Environment.GetEnvironmentVariable(DepthVariable), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int depth) ? depth : 0;

    /// <summary>
    /// Refuses a pool of worker processes in a process already <see cref="MaxDepth"/> pools deep: a task that starts a
    /// pool that runs the same task again would start processes until the machine ran out (as loky's
    /// LokyRecursionError, beyond 10 levels).
    /// </summary>
    /// <exception cref="InvalidOperationException">This process is <see cref="MaxDepth"/> pools deep.</exception>
    internal static void EnsureNotTooDeep()
    {
        if (CurrentDepth >= MaxDepth)
        {
            throw new InvalidOperationException(
                $"Cannot start a ProcessPool here: this process is a worker of a pool nested {CurrentDepth} deep ({DepthVariable}={CurrentDepth}), " +
                $"and pools may nest at most {MaxDepth} deep. A task that starts a pool that runs the same task again never ends: " +
                "stop the recursion, run the inner work in the task itself, or give the inner pool InProcess = true.");
        }
    }

    internal static readonly string[] ThreadLimitVariables = ["DOTNET_PROCESSOR_COUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

    // Variables that would make every worker load a profiler or a coverage collector.
    private static readonly string[] StrippedVariables =
    [
        "CORECLR_ENABLE_PROFILING", "CORECLR_PROFILER", "CORECLR_PROFILER_PATH", "CORECLR_PROFILER_PATH_32", "CORECLR_PROFILER_PATH_64",
        "COR_ENABLE_PROFILING", "COR_PROFILER", "COR_PROFILER_PATH", "DOTNET_DiagnosticPorts",
    ];

    /// <summary>util-linux's setpriv where it is (every Debian, Ubuntu, Fedora, RHEL): sets the parent-death signal before exec.</summary>
    private static readonly string? Setpriv = OperatingSystem.IsLinux()
        ? Array.Find(["/usr/bin/setpriv", "/bin/setpriv"], File.Exists)
        : null;

    /// <summary>The launch for this process, found once.</summary>
    /// <exception cref="WorkerStartException">Something needed is missing; the message lists what was tried.</exception>
    public static WorkerLaunch Current => Located.Value;

    /// <summary>The worker's start: on this machine (<c>--parent PID</c>, under setpriv), or as a job step on a node
    /// (<paramref name="remote"/>: <c>--remote</c>, the command that <c>srun</c> runs there).</summary>
    public ProcessStartInfo CreateStartInfo(IReadOnlyDictionary<string, string?> environment, bool remote = false)
    {
        // On Linux the worker is started through util-linux's setpriv, which asks the kernel to SIGKILL it when its
        // launcher thread (which lives as long as this process) goes, and then execs dotnet in place: same pid, and no
        // moment without that signal. The worker sets it again itself in Main, but a runtime that cannot start (no
        // thread to be had under a process limit: it waits forever before Main) would otherwise outlive its host.
        bool viaSetpriv = Setpriv is not null && !remote;
        var info = new ProcessStartInfo(viaSetpriv ? Setpriv! : Dotnet)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (viaSetpriv)
        {
            foreach (string argument in (string[])["--pdeathsig", "KILL", "--", Dotnet])
            {
                info.ArgumentList.Add(argument);
            }
        }

        foreach (string argument in (string[])
            ["exec", "--runtimeconfig", RuntimeConfig, "--depsfile", DepsFile, WorkerAssembly])
        {
            info.ArgumentList.Add(argument);
        }

        if (remote)
        {
            info.ArgumentList.Add("--remote");
        }
        else
        {
            info.ArgumentList.Add("--parent");
            info.ArgumentList.Add(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        foreach (string name in StrippedVariables)
        {
            info.Environment.Remove(name);
        }

        // One workstation GC heap per worker, even when the application asks for server GC.
        info.Environment.TryAdd("DOTNET_gcServer", "0");

        // Arguments of up to 4 MiB (a frame holds at most about 1 MiB of them, or one larger value) are allocated
        // in gen0 rather than the large object heap: the GC gives freed LOH pages back to the OS, so every large
        // argument the worker received touched fresh pages (a page fault per 4 KiB), which halved the bandwidth of
        // 1 MiB arguments (W4: ~1.9 GB/s with the default threshold, ~3.3 GB/s with this one). An application that
        // sets the threshold itself (runtimeconfig or environment) keeps its own.
        if (AppContext.GetData("System.GC.LOHThreshold") is null)
        {
            info.Environment.TryAdd("DOTNET_GCLOHThreshold", WorkerLohThreshold);
        }

        // A worker's hot code (the task's function, and the pool's loop around it) is compiled at full optimization
        // once it has run 30 times, counted from the first 3 ms in which nothing new was compiled. By default the
        // runtime waits 100 ms of that: a heuristic for an application's start-up, which in a pool's short life kept
        // tiny tasks running unoptimized code (W1 in the bench: 95-122 M -> 122-185 M tasks/s with no wait). With no
        // wait at all, the worker's own start-up code (ready-compiled, and run 30 times before the first task) was
        // counted too and compiled again twice, about 190 methods, on the worker's compiler thread while the first
        // tasks ran: 400 small Map calls right after the start took 0.36-0.43 s instead of 0.13-0.18 s with 3 ms,
        // and W1 is the same with 3 ms (bench/README.md). An application that sets it (environment or
        // WorkerEnvironment) keeps its own.
        info.Environment.TryAdd("DOTNET_TC_CallCountingDelayMs", "3");

        // No diagnostic server and no debugger pipe in workers: every .NET process makes three files for them in the
        // temp directory (dotnet-diagnostic-PID-*, clr-debug-pipe-PID-*) and removes them only at a normal exit, so
        // each worker the pool kills (timeout, Terminate, cancellation, a host killed with SIGKILL) left three behind.
        // An application that sets it (environment or WorkerEnvironment) keeps its own, to attach a debugger or
        // dotnet-trace to workers, and then the files of killed workers stay as they would for any killed .NET process.
        info.Environment.TryAdd(DiagnosticsVariable, "0");
        foreach ((string name, string? value) in environment)
        {
            info.Environment[name] = value;
        }

        // After the application's variables: a pool created in a task knows how deep it is (EnsureNotTooDeep).
        info.Environment[DepthVariable] = (CurrentDepth + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return info;
    }

    /// <summary>
    /// The workers' environment: <paramref name="environment"/> (the user's
    /// <see cref="ProcessPoolOptions.WorkerEnvironment"/>) plus each of <see cref="ThreadLimitVariables"/> set to
    /// max(1, cores / workers), unless this process's environment or <paramref name="environment"/> already names it.
    /// </summary>
    public static IReadOnlyDictionary<string, string?> WithThreadLimits(IReadOnlyDictionary<string, string?> environment, int workers)
    {
        string limit = Math.Max(1, Environment.ProcessorCount / Math.Max(1, workers)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Dictionary<string, string?>? merged = null;
        foreach (string name in ThreadLimitVariables)
        {
            if (!environment.ContainsKey(name) && Environment.GetEnvironmentVariable(name) is null)
            {
                merged ??= new Dictionary<string, string?>(environment);
                merged[name] = limit;
            }
        }

        return merged ?? environment;
    }

    /// <summary>Finds what a worker needs; <paramref name="hostLocation"/> is Pool.Host.dll's path, empty in a single-file app.</summary>
    /// <exception cref="WorkerStartException">Something needed is missing; the message says what and why.</exception>
    internal static WorkerLaunch Locate(string hostLocation)
    {
        if (hostLocation.Length == 0)
        {
            // In a single-file bundle (or a native AOT app) the assemblies are inside the executable, with no files for `dotnet exec` to load.
            throw new WorkerStartException(
                "ProcessPool cannot start its workers: this application is a single-file bundle or a native AOT app (Pool.Host.dll has no file location), " +
                "and a worker process needs Pool.Worker.dll and the application's assemblies as files. A single-file app hosts workers when it is " +
                "published with -p:IncludeAllContentForSelfExtract=true (its assemblies are then extracted to files); otherwise publish without " +
                "PublishSingleFile or PublishAot (a framework-dependent `dotnet publish`), or use ProcessPoolOptions.InProcess = true.");
        }

        var tried = new List<string>();
        string? worker = FindWorker(hostLocation, tried);
        string? deps = FindDepsFile(tried);
        string? config = deps is null ? null : FindRuntimeConfig(deps, worker, tried);
        string? dotnet = FindDotnet(tried);
        if (worker is null || deps is null || config is null || dotnet is null)
        {
            throw new WorkerStartException(
                "ProcessPool cannot start its workers: " + string.Join("; ", tried) + ". " +
                "Reference the ProcessPool package from the application project (so Pool.Worker.dll lands in its output), " +
                "and run the application as a framework-dependent app (not single-file or native AOT).");
        }

        return new WorkerLaunch(dotnet, worker, deps, config);
    }

    private static string? FindWorker(string hostLocation, List<string> tried)
    {
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string assemblies)
        {
            foreach (string path in assemblies.Split(Path.PathSeparator))
            {
                if (Path.GetFileName(path).Equals(WorkerFileName, StringComparison.OrdinalIgnoreCase) && File.Exists(path))
                {
                    return path;
                }
            }

            tried.Add($"{WorkerFileName} is not among the application's trusted assemblies");
        }

        foreach (string? directory in (string?[])[Path.GetDirectoryName(hostLocation), AppContext.BaseDirectory])
        {
            if (directory is null)
            {
                continue;
            }

            string candidate = Path.Combine(directory, WorkerFileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }

            tried.Add($"no {candidate}");
        }

        return null;
    }

    private static string? FindDepsFile(List<string> tried)
    {
        string? listed = AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string;
        foreach (string path in (listed ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            // The first entry is the application's; the others belong to shared frameworks.
            if (!path.Contains(Path.DirectorySeparatorChar + "shared" + Path.DirectorySeparatorChar, StringComparison.Ordinal) && File.Exists(path))
            {
                return path;
            }
        }

        string? entry = Assembly.GetEntryAssembly()?.Location;
        if (!string.IsNullOrEmpty(entry) && Path.ChangeExtension(entry, ".deps.json") is { } guess && File.Exists(guess))
        {
            return guess;
        }

        tried.Add($"no application deps.json (APP_CONTEXT_DEPS_FILES is '{listed}', entry assembly '{entry}')");
        return null;
    }

    private static string? FindRuntimeConfig(string deps, string? worker, List<string> tried)
    {
        string config = deps[..^".deps.json".Length] + ".runtimeconfig.json";
        if (File.Exists(config))
        {
            return config;
        }

        tried.Add($"no {config}");
        if (worker is not null && Path.ChangeExtension(worker, ".runtimeconfig.json") is { } own && File.Exists(own))
        {
            return own;
        }

        return null;
    }

    private static string? FindDotnet(List<string> tried)
    {
        string executable = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var candidates = new List<string?>
        {
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"),
            Path.GetFileName(Environment.ProcessPath) == executable ? Environment.ProcessPath : null,
            Up(RuntimeEnvironment.GetRuntimeDirectory(), 3) is { } root ? Path.Combine(root, executable) : null,
            Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } dotnetRoot ? Path.Combine(dotnetRoot, executable) : null,
        };
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            candidates.Add(Path.Combine(directory, executable));
        }

        foreach (string? candidate in candidates)
        {
            if (!string.IsNullOrEmpty(candidate) && File.Exists(candidate))
            {
                return candidate;
            }
        }

        tried.Add("no dotnet executable (DOTNET_HOST_PATH, the current process, three levels above the runtime directory, DOTNET_ROOT, PATH)");
        return null;
    }

    private static string? Up(string directory, int levels)
    {
        DirectoryInfo? info = new(directory.TrimEnd(Path.DirectorySeparatorChar));
        for (int i = 0; i < levels && info is not null; i++)
        {
            info = info.Parent;
        }

        return info?.FullName;
    }
}

/// <summary>
/// Starts processes from threads that live as long as this process. On Linux a worker asks to be
/// killed when the thread that started it exits (PR_SET_PDEATHSIG is per thread, not per process), so these
/// threads must not be thread-pool threads that may retire. There are two, so that a pool's workers are
/// forked in parallel (a fork and exec takes a few milliseconds, and the pool waits for its last worker).
/// </summary>
internal static class ProcessLauncher
{
    private const int Threads = 2;

    private static readonly System.Collections.Concurrent.BlockingCollection<(Process Process, TaskCompletionSource Started)> Requests = [];
    private static readonly Lazy<Thread[]> Launchers = new(() =>
    {
        var threads = new Thread[Threads];
        for (int i = 0; i < threads.Length; i++)
        {
            threads[i] = new Thread(Run) { IsBackground = true, Name = "pool-launcher" };
            threads[i].Start();
        }

        return threads;
    });

    public static Task StartAsync(Process process)
    {
        _ = Launchers.Value;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Requests.Add((process, started));
        return started.Task;
    }

    private static void Run()
    {
        foreach ((Process process, TaskCompletionSource started) in Requests.GetConsumingEnumerable())
        {
            try
            {
                process.Start();
                started.SetResult();
            }
            catch (Exception e)
            {
                // Handed to the caller, which reports what it tried to start.
                started.SetException(e);
            }
        }
    }
}
