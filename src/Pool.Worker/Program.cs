using System.IO.Pipes;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker executable. The pool starts it as
/// <c>dotnet exec --runtimeconfig app.runtimeconfig.json --depsfile app.deps.json Pool.Worker.dll --parent PID</c>,
/// so it loads the application's assemblies exactly as the application does, and writes its setup (where to
/// connect, its progress cell, the pool's secret: <see cref="WorkerSetup"/>) to its standard input. It connects,
/// proves it knows the secret and checks that the host does (<see cref="WorkerHandshake"/>), then serves tasks.
/// It exits when the pipe to its host closes, whatever it is doing.
/// </summary>
internal static class Program
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    private static int Main(string[] args)
    {
        bool remote = args is ["--remote"];
        int parent = 0;
        if (!remote && !TryParse(args, out parent))
        {
            Console.Error.WriteLine("Pool.Worker is started by ProcessPool: Pool.Worker --parent PID, with its setup on standard input.");
            return 2;
        }

        // Second line of defence against orphans (the first is end-of-stream on the pipe): the kernel kills
        // this process when the host's launcher thread, which lives as long as the host, goes away. A worker on a
        // Slurm node dies with its parent there, the job step's slurmstepd.
        if (OperatingSystem.IsLinux() && !(remote ? NativeMethods.DieWithParent() : NativeMethods.DieWithParent(parent)))
        {
            return 3;
        }

        if (!remote && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            // Out of the terminal's reach: a Ctrl+C is for the host to handle (a Slurm step's tasks stay in the group
            // slurmstepd signals).
            NativeMethods.LeaveForegroundGroup();
        }

        WorkerSetup setup;
        try
        {
            setup = ReadSetup(remote);
        }
        catch (ProtocolException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        using ProgressCell cell = setup.ProgressInBand ? ProgressCell.CreateLocal() : ProgressCell.OpenShared(setup.CellPath);
        Stream input, output;
        try
        {
            (input, output) = setup.CertificateHash is { } pinned ? TlsClient.Connect(setup.Address, pinned, ConnectTimeout) : Connect(setup.Address, parent);
        }
        catch (TimeoutException)
        {
            Console.Error.WriteLine($"Pool.Worker could not connect to {setup.Address} within {ConnectTimeout.TotalSeconds} s; the host is gone.");
            return 4;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"Pool.Worker could not connect to {setup.Address}: {e.Message}");
            return 4;
        }

        using (input)
        using (output)
        {
            try
            {
                WorkerHandshake.AuthenticateHost(input, output, setup.Secret);
            }
            catch (Exception e) when (e is ProtocolException or IOException)
            {
                Console.Error.WriteLine($"Pool.Worker: {e.Message}");
                return 4;
            }

            var runtime = new WorkerRuntime(input, output, cell, exitProcessOnEndOfInput: true, progressInBand: setup.ProgressInBand);
            return runtime.Run();
        }
    }

    /// <summary>
    /// The setup: on a Slurm node from the environment variable Slurm passed (removed at once, so that the function's
    /// child processes do not inherit it), else from standard input.
    /// </summary>
    private static WorkerSetup ReadSetup(bool remote)
    {
        if (remote)
        {
            string text = Environment.GetEnvironmentVariable(WorkerSetup.EnvironmentVariable)
                ?? throw new ProtocolException($"Pool.Worker --remote is started by ProcessPool's Slurm launcher, with its setup in {WorkerSetup.EnvironmentVariable}; it is not set.");
            Environment.SetEnvironmentVariable(WorkerSetup.EnvironmentVariable, null);
            return WorkerSetup.Parse(text);
        }

        using Stream standardInput = Console.OpenStandardInput();
        return WorkerSetup.Read(standardInput);
    }

    /// <summary>
    /// On Linux the host listens on an abstract Unix socket (see WorkerListener), which the worker connects
    /// without System.Net.Sockets (<see cref="UnixPipeClient"/>); elsewhere, as a named pipe client.
    /// </summary>
    private static (Stream Input, Stream Output) Connect(string pipe, int parent)
    {
        if (OperatingSystem.IsLinux() && (pipe.StartsWith('@') || Path.IsPathRooted(pipe)))
        {
            return UnixPipeClient.Connect(pipe, parent);
        }

        var stream = new NamedPipeClientStream(".", pipe, PipeDirection.InOut, PipeOptions.CurrentUserOnly);
        stream.Connect(ConnectTimeout);
        PipeBuffers.Enlarge(stream);
        return (stream, stream);
    }

    private static bool TryParse(string[] args, out int parent)
    {
        parent = args.Length == 2 && args[0] == "--parent" ? ParsePid(args[1]) : 0;
        return parent > 0;
    }

    /// <summary>
    /// A decimal process id, or 0. By hand, because every culture-aware parse (even with the invariant culture)
    /// loads ICU, 2-4 ms of a worker's start that a worker running culture-free code never needs.
    /// </summary>
    private static int ParsePid(string text)
    {
        int value = 0;
        foreach (char c in text)
        {
            if (c is < '0' or > '9' || value > (int.MaxValue - 9) / 10)
            {
                return 0;
            }

            value = (value * 10) + (c - '0');
        }

        return value;
    }
}
