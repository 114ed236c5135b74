using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Pool.Contracts;
using Pool.Internal;

namespace Pool.Tests.Faults;

/// <summary>
/// The link of workers on other machines (TCP with TLS, setup in the environment, progress and heartbeats in frames),
/// tested on this machine with real worker processes linked over the loopback address as Slurm's workers are linked
/// over the cluster's network. The Slurm tests (category Slurm) run the same link across real nodes.
/// </summary>
public class RemoteLinkTests
{
    private static ProcessPoolOptions Remote(LossLog? log = null)
    {
        var options = new ProcessPoolOptions { Launcher = new LoopbackTlsLauncher() };
        return log is null ? options : log.Attach(options);
    }

    /// <summary>
    /// A worker on another machine shows the task whose arguments it is decoding in its progress frames (protocol 6), so
    /// an argument that never finishes decoding there times out, or is stopped after a cancellation's grace, as on this
    /// machine: the call ended only at its cancellation, and the worker stayed stuck.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task An_argument_stuck_in_decoding_on_a_remote_worker_times_out_and_a_cancelled_one_gets_its_worker_replaced()
    {
        var decoding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: Remote() with
        {
            WorkerEnvironment = new Dictionary<string, string?> { [SlowToDecode.InWorker] = "1" },
            CancellationGrace = TimeSpan.FromMilliseconds(200),
            WorkerOutput = _ => decoding.TrySetResult(),
        });
        int first = pool.ProcessIds.Single();

        Func<Task> timed = () => pool.ApplyAsync(Functions.ValueOf, new SlowToDecode { Value = 1, Stuck = true }, taskTimeout: TimeSpan.FromSeconds(1)).Task;
        (await timed.Should().ThrowAsync<TaskTimeoutException>().Within()).Which.Message.Should().Contain("decoding its arguments");
        (await pool.ApplyAsync(Functions.Increment, 41).Task.Within()).Should().Be(42);
        int second = pool.ProcessIds.Single();
        second.Should().NotBe(first);

        decoding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cancellation = new CancellationTokenSource();
        AsyncResult<int> result = pool.ApplyAsync(Functions.ValueOf, new SlowToDecode { Value = 2, Stuck = true }, cancellationToken: cancellation.Token);
        await decoding.Task.Within();
        await cancellation.CancelAsync();
        await result.Invoking(async r => await r).Should().ThrowAsync<OperationCanceledException>();
        // The one worker was stuck: only a replacement can answer.
        (await pool.ApplyAsync(Functions.Increment, 1).Task.Within()).Should().Be(2);
        pool.ProcessIds.Should().NotContain(second);
    }

    [Fact(Timeout = 60_000)]
    public async Task Map_and_apply_run_over_the_TLS_link()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote());
        int[] squares = await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10_000)).Within();
        squares.Should().Equal(Enumerable.Range(0, 10_000).Select(i => i * i));
        (await pool.ApplyAsync(Functions.Concat, "a", 1).Task.Within()).Should().Be("a1");
        int[] pids = await pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, 8), chunkSize: 1).Within();
        pids.Distinct().Should().BeSubsetOf(pool.ProcessIds, "a remote worker reports its own pid in Ready").And.NotContain(Environment.ProcessId);
        await TestPools.DisposeAndAssertNoWorkersAsync(pool);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_crash_fails_only_the_task_that_ran_as_progress_frames_tell()
    {
        var log = new LossLog();
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote(log));
        // Chunks of 4: the crash is pinned on task 5 by the worker's progress frames, the tasks around it succeed.
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(RemoteFunctions.CrashOnFive, Enumerable.Range(0, 16), chunkSize: 4).Within();

        outcomes[5].Exception.Should().BeOfType<WorkerCrashedException>().Which.TaskIndex.Should().Be(5);
        outcomes.Where((_, i) => i != 5).Select(o => o.Value).Should().Equal(Enumerable.Range(0, 16).Where(i => i != 5), log.ToString());
        await pool.WhenAllWorkersAsync().Within();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_task_timeout_kills_the_worker_as_progress_frames_tell()
    {
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote());
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Functions.Sleep, [20, 30_000, 20, 20], chunkSize: 1, taskTimeout: TimeSpan.FromSeconds(1)).Within();

        outcomes[1].Exception.Should().BeOfType<TaskTimeoutException>();
        outcomes.Where((_, i) => i != 1).Select(o => o.Value).Should().Equal(20, 20, 20);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_worker_that_goes_silent_is_given_up_within_the_silence_limit_and_its_task_fails_as_lost()
    {
        var log = new LossLog();
        var busy = new RunningLines(2);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote(log) with { WorkerOutput = busy.OnLine });
        int stopped = pool.ProcessIds[0];
        Task<Outcome<int>[]> running = pool.MapOutcomesAsync(RemoteFunctions.SayRunningThenPid, [1500, 1500], chunkSize: 1);
        // Both tasks have run long enough for their progress frames to reach the host (the worker samples every 20 ms).
        await busy.All.Within();
        // A stopped process sends nothing, as a node that is down or cut off: its kernel still answers TCP, which is the harder case.
        Process.Start("kill", ["-STOP", stopped.ToString(System.Globalization.CultureInfo.InvariantCulture)]).WaitForExit();
        var clock = Stopwatch.StartNew();
        Outcome<int>[] outcomes = await running.Within();
        clock.Stop();

        outcomes.Should().ContainSingle(o => !o.Succeeded).Which.Exception.Should().BeOfType<WorkerLostException>()
            .Which.Message.Should().Contain("went silent");
        outcomes.Should().ContainSingle(o => o.Succeeded).Which.Value.Should().NotBe(stopped);
        clock.Elapsed.Should().BeLessThan(WorkerConnection.SilenceLimit + TimeSpan.FromSeconds(3), "the silence limit, plus the check's period");
        log.ToString().Should().Contain("nothing came from it");
        await pool.WhenAllWorkersAsync().Within();
        TestPools.AssertGone([stopped]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Connections_without_the_secret_are_refused_and_receive_nothing_of_the_pool()
    {
        var log = new LossLog();
        var rogues = new ConcurrentBag<Task<int>>();
        WorkerListener.BeforeWorkerStarts.Value = (address, _) =>
        {
            rogues.Add(ConnectWithTlsAsync(address));
            rogues.Add(ConnectInClearAsync(address));
            return Task.CompletedTask;
        };

        await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote(log));
        (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 100)).Within()).Should().Equal(Enumerable.Range(0, 100).Select(i => i * i));

        rogues.Should().HaveCount(4);
        foreach (Task<int> rogue in rogues)
        {
            (await rogue.Within()).Should().BeLessThanOrEqualTo(WorkerHandshake.ChallengeSize, "a peer that cannot prove the secret gets the random challenge at most");
        }

        log.ToString().Should().Contain("Refused a connection");
    }

    [Fact(Timeout = 60_000)]
    public async Task Peers_that_connect_and_say_nothing_do_not_hold_up_the_workers()
    {
        var silent = new ConcurrentBag<TcpClient>();
        WorkerListener.BeforeWorkerStarts.Value = async (address, _) =>
        {
            (string host, int port) = Parse(address);
            for (int i = 0; i < 3; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(host, port);
                silent.Add(client);
            }
        };

        try
        {
            // Each silent peer would hold a one-at-a-time handshake for 10 s: three of them, 30 s, past this start timeout.
            var clock = Stopwatch.StartNew();
            await using ProcessPool pool = await TestPools.StartAsync(workers: 2, options: Remote() with { StartTimeout = TimeSpan.FromSeconds(8) });
            clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(8));
            (await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10)).Within()).Should().HaveCount(10);
        }
        finally
        {
            foreach (TcpClient client in silent)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>A peer that does TLS (trusting any certificate) and answers the challenge with garbage; returns the bytes it received.</summary>
    private static async Task<int> ConnectWithTlsAsync(string address)
    {
        using var client = new TcpClient();
        (string host, int port) = Parse(address);
        await client.ConnectAsync(host, port);
#pragma warning disable CA5359 // The rogue trusts any certificate: it is the pool's check that is tested.
        using var tls = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
#pragma warning restore CA5359
        await tls.AuthenticateAsClientAsync("processpool");
        await tls.WriteAsync(new byte[64]);
        return await DrainAsync(tls);
    }

    /// <summary>A peer that speaks no TLS (the Slurm tests use it too); returns the bytes it received.</summary>
    internal static async Task<int> ConnectInClearAsync(string address)
    {
        using var client = new TcpClient();
        (string host, int port) = Parse(address);
        await client.ConnectAsync(host, port);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync("PPAUTH01 hello, pool"u8.ToArray());
        return await DrainAsync(stream);
    }

    private static async Task<int> DrainAsync(Stream stream)
    {
        byte[] buffer = new byte[4096];
        int total = 0;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // Reset by the host: that is the end.
        }

        return total;
    }

    private static (string Host, int Port) Parse(string address)
    {
        int colon = address.LastIndexOf(':');
        return (address[4..colon], int.Parse(address[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Completes once <c>count</c> workers have written "running" (<see cref="RemoteFunctions.SayRunning"/>).</summary>
internal sealed class RunningLines(int count)
{
    private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _seen;

    public Task All => _all.Task;

    public void OnLine(WorkerOutputLine line)
    {
        if (line.Text == "running" && Interlocked.Increment(ref _seen) == count)
        {
            _all.TrySetResult();
        }
    }
}

/// <summary>Shipped functions of the remote-link tests.</summary>
public static class RemoteFunctions
{
    /// <summary>
    /// Runs 100 ms (five progress samples of a remote worker), says "running" on stdout, then runs on until
    /// <paramref name="milliseconds"/>: a test that waits for the line knows the host has been told which task runs.
    /// </summary>
    public static void SayRunning(int milliseconds)
    {
        Thread.Sleep(100);
        Console.WriteLine("running");
        Console.Out.Flush();
        Thread.Sleep(Math.Max(0, milliseconds - 100));
    }

    /// <summary><see cref="SayRunning"/>, then the worker's pid.</summary>
    public static int SayRunningThenPid(int milliseconds)
    {
        SayRunning(milliseconds);
        return Environment.ProcessId;
    }

    /// <summary>x; task 5 runs a while (so that its progress frame is sent), then crashes its worker.</summary>
    public static int CrashOnFive(int x)
    {
        if (x == 5)
        {
            Thread.Sleep(300);
            Environment.FailFast("ProcessPool test: crash on five");
        }

        return x;
    }
}
