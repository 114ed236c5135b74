using System.ComponentModel;
using System.Diagnostics;
using System.IO.Pipelines;
using System.IO.Pipes;
using Pool.Contracts;
using Pool.Worker;

namespace Pool.Internal;

/// <summary>The pipe to one worker and the process (or thread) behind it.</summary>
internal interface IWorkerTransport : IDisposable
{
    /// <summary>The worker's process id: on a node, the one it reported in its Ready frame (before that, its srun's).</summary>
    int ProcessId { get; }

    /// <summary>The node the worker runs on; null on this machine.</summary>
    string? Node { get; }

    /// <summary>Whether its progress comes in frames (<see cref="ProgressMessage"/>), into <see cref="Cell"/>.</summary>
    bool ProgressInBand { get; }

    /// <summary>Whether <see cref="Kill"/> was called: a read that fails from now on is the kill's doing.</summary>
    bool Killed { get; }

    /// <summary>The worker said Ready from process <paramref name="processId"/>.</summary>
    void OnReady(int processId);

    /// <summary>What the worker writes, read with blocking reads on the connection's own thread.</summary>
    Stream Input { get; }

    /// <summary>What the worker reads.</summary>
    Stream Output { get; }

    /// <summary>How many bytes a write to <see cref="Output"/> surely takes without waiting for the worker to read.</summary>
    int OutputCapacity { get; }

    ProgressCell Cell { get; }

    /// <summary>Completes when the worker has exited.</summary>
    Task<WorkerExit> Exited { get; }

    /// <summary>
    /// Waits on this thread for the worker's exit, at most <paramref name="timeout"/>, without the thread pool (which
    /// <see cref="Exited"/> needs); whether it exited.
    /// </summary>
    bool WaitForExit(TimeSpan timeout);

    /// <summary>How the worker exited, once <see cref="WaitForExit"/> said it did.</summary>
    WorkerExit ExitStatus { get; }

    /// <summary>Completes when the worker's stdout and stderr have ended.</summary>
    Task OutputDrained { get; }

    IReadOnlyList<string> StandardErrorTail { get; }

    /// <summary>Whether <see cref="Kill"/> stops a running task (a process); an in-process worker's thread cannot be stopped.</summary>
    bool KillStopsRunningTask { get; }

    /// <summary>Ends the worker now, with every process it started; idempotent.</summary>
    void Kill();

    /// <summary>Closes the pipe: the worker sees end-of-input and exits.</summary>
    void CloseOutput();

    /// <summary>Ends a pending read of <see cref="Input"/> (the worker exited, but a descendant holds its pipe open).</summary>
    void AbortInput();
}

/// <summary>
/// A worker process, started with the application's dependency graph, and its link to this process; on a Slurm
/// node, the local process is the <c>srun</c> that runs the worker there (see <see cref="WorkerSite"/>).
/// </summary>
internal sealed class WorkerProcess : IWorkerTransport
{
    private const int TailLines = 20;

    // The first line of the runtime's report of a fatal error. A deep stack's frames can push it out of the tail,
    // so the last one seen is kept and put back in front of the tail.
    private static readonly string[] FatalHeaders = ["Stack overflow.", "Unhandled exception.", "Process terminated.", "Fatal error."];

    private readonly Process _process;
    private readonly WorkerListener _listener;
    private readonly WorkerSite _site;
    private volatile bool _killed;
    private int _released;
    private readonly Queue<string> _tail = new();
    private string? _fatalHeader;
    private readonly Lock _tailLock = new();
    private readonly TaskCompletionSource<WorkerExit> _exited;
    private Stream _pipe = Stream.Null;
    private Task _output = Task.CompletedTask;

    private WorkerProcess(Process process, WorkerListener listener, ProgressCell cell, TaskCompletionSource<WorkerExit> exited, WorkerSite site, string? node)
    {
        _process = process;
        _listener = listener;
        _exited = exited;
        _site = site;
        Node = node;
        Cell = cell;
    }

    public int ProcessId { get; private set; }

    public string? Node { get; }

    public bool ProgressInBand => _site.ProgressInBand;

    public bool Killed => _killed;

    public void OnReady(int processId)
    {
        if (ProgressInBand)
        {
            ProcessId = processId;
        }
    }

    public Stream Input => _pipe;

    public Stream Output => _pipe;

    public int OutputCapacity { get; private set; } = PipeBuffers.AssumedCapacity;

    public ProgressCell Cell { get; }

    public Task<WorkerExit> Exited => _exited.Task;

    // Process.WaitForExit waits for the runtime's child-exit notice (its SIGCHLD thread); the Exited event then comes
    // through the thread pool.
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    public WorkerExit ExitStatus => _exited.Task.IsCompletedSuccessfully ? _exited.Task.Result : Exit();

    public Task OutputDrained => _output;

    public IReadOnlyList<string> StandardErrorTail
    {
        get
        {
            lock (_tailLock)
            {
                return _fatalHeader is { } header && !_tail.Contains(header) ? [header, "...", .. _tail] : [.. _tail];
            }
        }
    }

    /// <summary>
    /// Starts the process, hands it its setup (<see cref="WorkerSetup"/>) on its standard input, and waits until it
    /// has connected and proved it is the worker this pool started (<see cref="WorkerListener"/>); connections from
    /// any other process are refused and reported to <paramref name="stray"/>, and the wait goes on.
    /// </summary>
    /// <exception cref="WorkerStartException">It could not be started, exited, or did not connect in time.</exception>
    public static async Task<WorkerProcess> StartAsync(
        WorkerSite site, WorkerLaunch launch, int workerId, Action<WorkerOutputLine> output, IReadOnlyDictionary<string, string?> environment, byte[] secret,
        Action<StrayConnection> stray, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Where it runs first: when no node is left (all lost), nothing has been made yet.
        string? node = site.Place();
        string cellPath = WorkerSetup.InBand;
        ProgressCell cell;
        WorkerListener listener;
        try
        {
            cell = site.ProgressInBand ? ProgressCell.CreateLocal() : ProgressCell.CreateShared(out cellPath);
        }
        catch
        {
            site.Release(node);
            throw;
        }

        try
        {
            listener = site.CreateListener();
        }
        catch
        {
            site.Release(node);
            cell.Dispose();
            ProgressCell.TryDelete(cellPath);
            throw;
        }

        var setup = new WorkerSetup(listener.Address, cellPath, secret, site.CertificateHash);
        ProcessStartInfo info;
        bool setupOnStandardInput;
        try
        {
            info = site.CreateStartInfo(launch, node, setup, environment, out setupOnStandardInput);
        }
        catch
        {
            site.Release(node);
            listener.Dispose();
            cell.Dispose();
            ProgressCell.TryDelete(cellPath);
            throw;
        }

        var exited = new TaskCompletionSource<WorkerExit>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process, listener, cell, exited, site, node);
        process.Exited += (_, _) => exited.TrySetResult(worker.Exit());
        string command = node is null
            ? $"{launch.Dotnet} exec {launch.WorkerAssembly} (deps {launch.DepsFile})"
            : $"{info.FileName} {string.Join(' ', info.ArgumentList)} on node {node}";
        using var connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<(Stream Stream, int Capacity)>? connected = null;
        try
        {
            if (WorkerListener.BeforeWorkerStarts.Value is { } hook)
            {
                await hook(listener.Address, cellPath).ConfigureAwait(false);
            }

            try
            {
                await ProcessLauncher.StartAsync(process).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Win32Exception or InvalidOperationException or PlatformNotSupportedException)
            {
                throw new WorkerStartException($"Could not start worker {workerId} as `{command}`: {e.Message}", e);
            }

            worker.ProcessId = process.Id;
            try
            {
                // Far below a pipe's buffer: the write does not wait for the worker to read.
                if (setupOnStandardInput)
                {
                    process.StandardInput.Write(setup.ToText());
                }

                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // It exited already: the wait below reports how.
            }

            worker._output = Task.WhenAll(
                worker.PumpAsync(process.StandardOutput, workerId, isError: false, output),
                worker.PumpAsync(process.StandardError, workerId, isError: true, output));

            connected = listener.AcceptAsync(worker.ProcessId, secret, stray, connecting.Token);
            Task first;
            try
            {
                first = await Task.WhenAny(connected, exited.Task).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new WorkerStartException(
                    $"Worker {workerId} (pid {worker.ProcessId}) did not connect within {timeout.TotalSeconds:0.#} s of starting as `{command}`. " +
                    "A loaded machine can be slow to start processes: raise ProcessPoolOptions.StartTimeout." + worker.ErrorText());
            }

            if (first != connected)
            {
                await worker._output.WaitAsync(TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
                throw new WorkerStartException(
                    $"Worker {workerId} (pid {worker.ProcessId}) exited with {exited.Task.Result.Describe()} before connecting; it was started as `{command}`." +
                    worker.ErrorText());
            }

            (worker._pipe, worker.OutputCapacity) = await connected.ConfigureAwait(false);
            // The worker mapped its cell before it connected: the file is no longer needed by anyone.
            ProgressCell.TryDelete(cellPath);
            return worker;
        }
        catch
        {
            await connecting.CancelAsync().ConfigureAwait(false);
            worker.Kill();
            worker.Dispose();
            ProgressCell.TryDelete(cellPath);
            if (connected is not null)
            {
                // The accept ends with the cancellation (or the listener's disposal); a worker that connected just now is let go.
                await ((Task)connected).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (connected.IsCompletedSuccessfully)
                {
                    await connected.Result.Stream.DisposeAsync().ConfigureAwait(false);
                }
            }

            throw;
        }
    }

    public bool KillStopsRunningTask => true;

    public void Kill()
    {
        _killed = true;
        if (Node is not null || ProgressInBand)
        {
            // A worker on a node exits as soon as its link closes, whatever it is doing; the srun here is killed too.
            _pipe.Dispose();
        }

        ProcessTree.Kill(_process);
    }

    public void CloseOutput() => _pipe.Dispose();

    public void AbortInput() => _pipe.Dispose();

    public void Dispose()
    {
        _pipe.Dispose();
        _listener.Dispose();
        Cell.Dispose();
        _process.Dispose();
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _site.Release(Node);
        }
    }

    /// <summary>
    /// The exit of the process. A step's srun exits as its worker did (128 + N for a signal), except when the node
    /// failed: it then exits 0, and only its last lines say so (see SlurmStepExit).
    /// </summary>
    private WorkerExit Exit() =>
        Node is null ? new WorkerExit(_process.ExitCode) : SlurmStepExit.ParseStepExit(_process.ExitCode, StandardErrorTail) ?? new WorkerExit(-1);

    private string ErrorText()
    {
        IReadOnlyList<string> tail = StandardErrorTail;
        return tail.Count == 0 ? string.Empty : " Its stderr: " + string.Join(Environment.NewLine, tail);
    }

    private async Task PumpAsync(StreamReader reader, int workerId, bool isError, Action<WorkerOutputLine> output)
    {
        try
        {
            // Not ReadLineAsync: a worker that writes without a newline (a binary dump, a long document on one line)
            // made this process hold all of it in one string until the next newline (1.6 GB of the host's memory for
            // 300 MB written, without bound for a stream that never ends a line), and a crash's message quoted it whole.
            var lines = new OutputLines();
            var buffer = new char[4096];
            var ready = new List<string>();
            int read;
            while ((read = await reader.ReadAsync(buffer.AsMemory()).ConfigureAwait(false)) > 0)
            {
                lines.Add(buffer.AsSpan(0, read), ready);
                foreach (string line in ready)
                {
                    Deliver(line, workerId, isError, output);
                }

                ready.Clear();
            }

            if (lines.Rest() is { } last)
            {
                Deliver(last, workerId, isError, output);
            }
        }
        catch (IOException)
        {
            // The pipe broke with the process: that is the end of its output.
        }
        catch (ObjectDisposedException)
        {
            // The process object was disposed after the worker was gone.
        }
    }

    private void Deliver(string line, int workerId, bool isError, Action<WorkerOutputLine> output)
    {
        if (isError)
        {
            // A crash's message quotes these lines: each is kept at most TailLineChars long.
            string kept = line.Length <= OutputLines.TailLineChars ? line : string.Concat(line.AsSpan(0, OutputLines.TailLineChars), " ...");
            lock (_tailLock)
            {
                if (_tail.Count == TailLines)
                {
                    _tail.Dequeue();
                }

                _tail.Enqueue(kept);
                if (Array.Exists(FatalHeaders, header => line.StartsWith(header, StringComparison.Ordinal)))
                {
                    _fatalHeader = kept;
                }
            }
        }

        try
        {
            output(new WorkerOutputLine(workerId, ProcessId, isError, line));
        }
        catch (Exception e)
        {
            // The user's handler failed; the line and the failure still reach a person.
            Console.Error.WriteLine($"ProcessPool: the worker output handler threw {e.GetType().Name}: {e.Message}; the line was: {line}");
        }
    }
}

/// <summary>
/// Cuts a worker's output into lines as <see cref="TextReader.ReadLine"/> does ("\n", "\r" or "\r\n" ends one), with
/// a bound: a line longer than <see cref="MaxLineChars"/> is handed on in pieces of that length, so that what the
/// host holds of a worker's output is bounded however the worker writes.
/// </summary>
internal sealed class OutputLines
{
    /// <summary>The longest line handed on; a longer one arrives as several.</summary>
    public const int MaxLineChars = 16 * 1024;

    /// <summary>The longest stderr line kept for a crash's message.</summary>
    public const int TailLineChars = 1024;

    private readonly System.Text.StringBuilder _line = new();
    private bool _afterCarriageReturn;
    private bool _afterPiece;

    /// <summary>Adds what was read; the lines it completes are added to <paramref name="lines"/>.</summary>
    public void Add(ReadOnlySpan<char> chars, List<string> lines)
    {
        foreach (char c in chars)
        {
            if (_afterCarriageReturn)
            {
                _afterCarriageReturn = false;
                if (c == '\n')
                {
                    continue;
                }
            }

            if (c is '\n' or '\r')
            {
                _afterCarriageReturn = c == '\r';
                if (!_afterPiece || _line.Length > 0)
                {
                    // (A line of exactly MaxLineChars went as its piece: its end is not one more, empty, line.)
                    lines.Add(_line.ToString());
                }

                _line.Clear();
                _afterPiece = false;
                continue;
            }

            _line.Append(c);
            _afterPiece = false;
            if (_line.Length == MaxLineChars)
            {
                lines.Add(_line.ToString());
                _line.Clear();
                _afterPiece = true;
            }
        }
    }

    /// <summary>The last line, at the end of the stream, if it was not ended.</summary>
    public string? Rest() => _line.Length > 0 ? _line.ToString() : null;
}

/// <summary>
/// The worker runtime on a thread of this process, over in-memory pipes: the pool's in-process mode, for
/// debugging. Values still go through the serializer and the protocol, so what works here works in
/// workers; but a crash here is a crash of the application, and a running function cannot be killed.
/// </summary>
internal sealed class InProcessWorker : IWorkerTransport
{
    private readonly Pipe _toWorker = new();
    private readonly Pipe _fromWorker = new();
    private readonly TaskCompletionSource<WorkerExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private InProcessWorker()
    {
        Output = _toWorker.Writer.AsStream();
        Input = _fromWorker.Reader.AsStream();
    }

    public int ProcessId => Environment.ProcessId;

    public string? Node => null;

    public bool ProgressInBand => false;

    public bool Killed => false;

    public void OnReady(int processId)
    {
    }

    public Stream Input { get; }

    public Stream Output { get; }

    // An in-memory pipe takes up to 64 KiB before its writer waits (PipeOptions.PauseWriterThreshold).
    public int OutputCapacity => 32 * 1024;

    public ProgressCell Cell { get; } = ProgressCell.CreateLocal();

    public Task<WorkerExit> Exited => _exited.Task;

    public bool WaitForExit(TimeSpan timeout) => ((IAsyncResult)_exited.Task).AsyncWaitHandle.WaitOne(timeout);

    public WorkerExit ExitStatus => _exited.Task.Result;

    public Task OutputDrained => Task.CompletedTask;

    public IReadOnlyList<string> StandardErrorTail => [];

    public static InProcessWorker Start(int workerId)
    {
        var worker = new InProcessWorker();
        var thread = new Thread(worker.Run) { IsBackground = true, Name = $"pool-inprocess-worker-{workerId}" };
        thread.Start();
        return worker;
    }

    public bool KillStopsRunningTask => false;

    public void Kill() => _toWorker.Writer.Complete();

    public void CloseOutput() => _toWorker.Writer.Complete();

    public void AbortInput() => _fromWorker.Writer.Complete();

    public void Dispose()
    {
        _toWorker.Writer.Complete();
        _fromWorker.Reader.Complete();
        Output.Dispose();
    }

    private void Run()
    {
        try
        {
            using var runtime = new WorkerRuntime(_toWorker.Reader.AsStream(), _fromWorker.Writer.AsStream(), Cell, exitProcessOnEndOfInput: false);
            int code = runtime.Run();
            _fromWorker.Writer.Complete();
            _exited.TrySetResult(new WorkerExit(code));
        }
        catch (Exception e)
        {
            // The in-process worker failed: the connection sees its output end with this error.
            _fromWorker.Writer.Complete(e);
            _exited.TrySetResult(new WorkerExit(1));
        }
    }
}
