using System.IO.Pipes;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker executable. The pool starts it as
/// <c>dotnet exec --runtimeconfig app.runtimeconfig.json --depsfile app.deps.json Pool.Worker.dll
/// --pipe NAME --cell PATH --parent PID</c>, so it loads the application's assemblies exactly as the
/// application does. It exits when the pipe to its host closes, whatever it is doing.
/// </summary>
internal static class Program
{
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
        using var stream = new NamedPipeClientStream(".", pipe, PipeDirection.InOut, PipeOptions.CurrentUserOnly);
        try
        {
            stream.Connect(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            Console.Error.WriteLine($"Pool.Worker could not connect to pipe {pipe} within 30 s; the host is gone.");
            return 4;
        }

        PipeBuffers.Enlarge(stream);
        var runtime = new WorkerRuntime(stream, stream, cell, exitProcessOnEndOfInput: true);
        return runtime.Run();
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
                case "--parent": _ = int.TryParse(args[i + 1], out parent); break;
                default: return false;
            }
        }

        return pipe.Length > 0 && cell.Length > 0 && parent > 0;
    }
}
