using Pool;
using Pool.TestHost;

// Starts a pool, prints its worker pids, keeps every worker busy in user code, and says so; then waits
// to be killed. Output: "pids 123,456", then "running <pid>" once per busy worker.
if (args is ["shared"])
{
    // The shared pool: used twice, then the host exits normally without disposing it. Output: "same True", "pids 1,2".
    int[] first = ProcessPool.Shared.Map(Busy.Pid, [0, 1, 2, 3], chunkSize: 1);
    Console.WriteLine($"same {ReferenceEquals(ProcessPool.Shared, ProcessPool.Shared) && first.All(ProcessPool.Shared.ProcessIds.Contains)}");
    Console.WriteLine($"pids {string.Join(',', ProcessPool.Shared.ProcessIds)}");
    return 0;
}

if (args is ["starved-imap"])
{
    // Eight blocking Imaps, each on a thread of a thread pool capped at four threads: none is free to wake them, so each
    // must make progress without one. Output: "done 8" (all ended with the right sum), or "stuck N of 8" after 30 s.
    ThreadPool.SetMinThreads(2, 2);
    ThreadPool.SetMaxThreads(4, 4);
    var starved = new ProcessPool(new ProcessPoolOptions { Workers = 2, WorkerOutput = _ => { } });
    // Inputs of each kind: a small collection (read at the call), a large one and a lazy sequence (read on a thread of their own).
    IEnumerable<int> Input(int i) => (i / 2 % 3) switch
    {
        0 => Enumerable.Range(0, 100),
        1 => [.. Enumerable.Range(0, 1_000)],
        _ => Enumerable.Range(0, 1_000).Where(_ => true),
    };
    int Expected(int i) => Input(i).Sum(x => x * x);
    Task<int>[] calls = [.. Enumerable.Range(0, 8).Select(i => Task.Run(() => i % 2 == 0
        ? starved.Imap(Busy.Square, Input(i)).Sum()
        : starved.ImapUnordered(Busy.Square, Input(i)).Sum(r => r.Result)))];
    bool ended = Task.WaitAll(calls, TimeSpan.FromSeconds(30));
    Console.WriteLine(ended ? $"done {Enumerable.Range(0, 8).Count(i => calls[i].Result == Expected(i))}" : $"stuck {calls.Count(c => !c.IsCompleted)} of 8");
    Console.Out.Flush();
    Environment.Exit(0);
}

if (args is ["starved-get"])
{
    // Eight ApplyAsync calls with a callback and an error callback, each waited for with Get() on a thread of a thread pool
    // capped at four threads: the callbacks must run although no thread-pool thread is free. Output: "done 8", or
    // "stuck N of 8" after 30 s.
    ThreadPool.SetMinThreads(2, 2);
    ThreadPool.SetMaxThreads(4, 4);
    var starved = new ProcessPool(new ProcessPoolOptions { Workers = 2, WorkerOutput = _ => { } });
    int called = 0;
    Task<int>[] calls = [.. Enumerable.Range(0, 8).Select(i => Task.Run(() => i % 2 == 0
        ? starved.ApplyAsync(Busy.Square, i, callback: _ => Interlocked.Increment(ref called)).Get()
        : starved.ApplyAsync(Busy.Fail, i, errorCallback: _ => Interlocked.Increment(ref called)).Wait() ? i * i : -1))];
    bool ended = Task.WaitAll(calls, TimeSpan.FromSeconds(30));
    Console.WriteLine(ended ? $"done {Enumerable.Range(0, 8).Count(i => calls[i].Result == i * i) + called - 8}" : $"stuck {calls.Count(c => !c.IsCompleted)} of 8");
    Console.Out.Flush();
    Environment.Exit(0);
}

if (args is ["starved-timeout"])
{
    // A task past its timeout while every thread-pool thread is held (64 queued work items that spin until released:
    // busy cores, so the thread pool adds no thread): its worker must be killed at the deadline, not when the thread
    // pool has a thread to run a timer's callback. The task would end at 1.5
    // s, the thread pool is released at 2.5 s. Output: "timeout", or "result N" (the deadline was missed).
    ThreadPool.SetMinThreads(2, 2);
    var starved = new ProcessPool(new ProcessPoolOptions { Workers = 1, WorkerOutput = _ => { } });
    starved.Apply(Busy.Square, 2);
    bool released = false;
    for (int i = 0; i < 64; i++)
    {
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            while (!Volatile.Read(ref released))
            {
                Thread.SpinWait(1_000);
            }
        }, null);
    }

    AsyncResult<int> late = starved.ApplyAsync(Busy.Sleep, 1_500, taskTimeout: TimeSpan.FromMilliseconds(300));
    Thread.Sleep(2_500);
    Volatile.Write(ref released, true);
    try
    {
        Console.WriteLine($"result {late.Get(TimeSpan.FromSeconds(30))}");
    }
    catch (TaskTimeoutException)
    {
        Console.WriteLine("timeout");
    }

    Console.Out.Flush();
    Environment.Exit(0);
}

if (args is ["nested-depth"])
{
    // Run with PROCESSPOOL_DEPTH set, as a worker of nested pools is. Output: "started <depth its worker sees>", or
    // "refused <exception type>: <message>".
    try
    {
        using var nested = new ProcessPool(new ProcessPoolOptions { Workers = 1, WorkerOutput = _ => { } });
        Console.WriteLine($"started {nested.Apply(() => Environment.GetEnvironmentVariable("PROCESSPOOL_DEPTH"))}");
    }
    catch (Exception e)
    {
        Console.WriteLine($"refused {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
    }

    return 0;
}

if (args is ["slurm-allocation"])
{
    // Holds a Slurm allocation (its own, or the one SLURM_JOB_ID names) with one step sleeping on a node, and waits to
    // be killed. Output: "job <id> owned <True|False>", then "step <node> <sleep's marker>".
    await SlurmHolder.RunAsync();
    return 0;
}

if (args is ["ctrl-c"])
{
    // A host that handles Ctrl+C, as the generic host does to shut down gracefully: its busy tasks must still finish.
    // Output: "pids 1,2", "running <pid>" twice, "interrupted" when SIGINT comes, then "results 0,1" or "failed <message>".
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        Console.WriteLine("interrupted");
    };
    await using var handling = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 2, WorkerOutput = line => Console.WriteLine(line.Text) });
    Console.WriteLine($"pids {string.Join(',', handling.ProcessIds)}");
    try
    {
        int[] results = await handling.MapAsync(Busy.RunFor, [0, 1], chunkSize: 1);
        Console.WriteLine($"results {string.Join(',', results)}");
    }
    catch (Exception e)
    {
        Console.WriteLine($"failed {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
    }

    return 0;
}

// "N slurm": the workers run on the nodes of a Slurm allocation of 2 nodes that the pool asks for (one worker per node).
int workers = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2;
await using var pool = await ProcessPool.StartAsync(new ProcessPoolOptions
{
    Workers = workers,
    WorkerOutput = line => Console.WriteLine(line.Text),
    Launcher = args is [_, "slurm"] ? new SlurmLauncher { Nodes = 2, WorkersPerNode = 1 } : null,
});
Console.WriteLine($"pids {string.Join(',', pool.ProcessIds)}");
await pool.MapAsync(Busy.Run, Enumerable.Range(0, workers), chunkSize: 1);
return 0;

namespace Pool.TestHost
{
/// <summary>The "slurm-allocation" mode: an allocation and one step, held until the process is killed.</summary>
internal static class SlurmHolder
{
    public static async Task RunAsync()
    {
        var options = new SlurmLauncher { Nodes = 2, WorkersPerNode = 1 };
        var allocation = await Pool.Internal.SlurmAllocation.AcquireAsync(options, TimeSpan.FromSeconds(30), null, CancellationToken.None);
        Console.WriteLine($"job {allocation.JobId} owned {allocation.Owned}");
        string node = allocation.PlaceWorker();
        // A sleep whose length marks it, so that the test finds it among the node's processes.
        string marker = (600 + Environment.ProcessId % 1000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Started by the pool's launcher threads, which live as long as the process: srun runs under setpriv
        // --pdeathsig KILL, which fires when the starting thread ends.
        var step = new System.Diagnostics.Process { StartInfo = allocation.CreateStepStartInfo(node, "sleep", [marker]) };
        await Pool.Internal.ProcessLauncher.StartAsync(step);
        step.StandardInput.Close();
        Console.WriteLine($"step {node} {marker}");
        await step.WaitForExitAsync();
        Console.WriteLine($"step ended {step.ExitCode}");
        await Task.Delay(Timeout.Infinite);
    }
}

/// <summary>What the workers run: announce, then sleep far longer than any test.</summary>
public static class Busy
{
    public static int Pid(int _) => Environment.ProcessId;

    /// <summary>Announces, then sleeps 3 s (long enough for the test to interrupt it).</summary>
    public static int RunFor(int x)
    {
        Console.WriteLine($"running {Environment.ProcessId}");
        Console.Out.Flush();
        Thread.Sleep(TimeSpan.FromSeconds(3));
        return x;
    }

    public static int Square(int x) => x * x;

    public static int Sleep(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return milliseconds;
    }

    public static int Fail(int x) => throw new InvalidOperationException($"task {x} fails");

    public static int Run(int x)
    {
        Console.WriteLine($"running {Environment.ProcessId}");
        Console.Out.Flush();
        Thread.Sleep(TimeSpan.FromMinutes(10));
        return x;
    }
}
}
