using System.IO.Pipes;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker executable. The pool starts it as
/// <c>dotnet exec --runtimeconfig app.runtimeconfig.json --depsfile app.deps.json Pool.Worker.dll
/// --pipe PIPE --cell PATH --parent PID</c> (PIPE: outside Windows, the path of the pipe's socket), so it loads the application's assemblies exactly as the
/// application does. It exits when the pipe to its host closes, whatever it is doing.
/// </summary>
internal static class Program
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    private static int Main(string[] args)
    {
        if (!TryParse(args, out string? pipe, out string? cellPath, out int parent))
        {
            Console.Error.WriteLine("Pool.Worker is started by ProcessPool: Pool.Worker --pipe NAME --cell PATH --parent PID");
            return 2;
        }

        // Second line of defence against orphans (the first is end-of-stream on the pipe): the kernel kills
        // this process when the host's launcher thread, which lives as long as the host, goes away.
        if (OperatingSystem.IsLinux() && !NativeMethods.DieWithParent(parent))
        {
            return 3;
        }

        using ProgressCell cell = ProgressCell.OpenShared(cellPath);
        Stream input, output;
        try
        {
            (input, output) = Connect(pipe, parent);
        }
        catch (TimeoutException)
        {
            Console.Error.WriteLine($"Pool.Worker could not connect to pipe {pipe} within {ConnectTimeout.TotalSeconds} s; the host is gone.");
            return 4;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine(e.Message);
            return 4;
        }

        using (input)
        using (output)
        {
            var runtime = new WorkerRuntime(input, output, cell, exitProcessOnEndOfInput: true);
            return runtime.Run();
        }
    }

    /// <summary>
    /// On Linux the host names its pipe by the path of its socket (see WorkerTransport), which the worker connects
    /// without System.Net.Sockets (<see cref="UnixPipeClient"/>); elsewhere, as a named pipe client.
    /// </summary>
    private static (Stream Input, Stream Output) Connect(string pipe, int parent)
    {
        if (OperatingSystem.IsLinux() && Path.IsPathRooted(pipe))
        {
            return UnixPipeClient.Connect(pipe, parent);
        }

        var stream = new NamedPipeClientStream(".", pipe, PipeDirection.InOut, PipeOptions.CurrentUserOnly);
        stream.Connect(ConnectTimeout);
        PipeBuffers.Enlarge(stream);
        return (stream, stream);
    }

    private static bool TryParse(string[] args, out string pipe, out string cell, out int parent)
    {
        pipe = cell = string.Empty;
        parent = 0;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--pipe": pipe = args[i + 1]; break;
                case "--cell": cell = args[i + 1]; break;
                case "--parent": parent = ParsePid(args[i + 1]); break;
                default: return false;
            }
        }

        return pipe.Length > 0 && cell.Length > 0 && parent > 0;
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
