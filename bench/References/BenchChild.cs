using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pool.Bench.References;

/// <summary>
/// Starts this bench's own executable in a hidden mode (<c>--pipe-echo</c>, <c>--hello</c>) the way the pool
/// starts its workers: <c>dotnet exec --runtimeconfig ... --depsfile ... Pool.Bench.dll</c>, with the same
/// <c>dotnet</c> (found as src/Pool.Host/Internal/WorkerLaunch.cs finds it), so that a reference pays the
/// same process start as a worker.
/// </summary>
internal static class BenchChild
{
    private static readonly Lazy<string> Dotnet = new(FindDotnet);

    public static ProcessStartInfo StartInfo(params string[] arguments)
    {
        string assembly = typeof(BenchChild).Assembly.Location;
        var info = new ProcessStartInfo(Dotnet.Value)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in (string[])
            ["exec", "--runtimeconfig", Path.ChangeExtension(assembly, ".runtimeconfig.json"),
             "--depsfile", Path.ChangeExtension(assembly, ".deps.json"), assembly, .. arguments])
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }

    /// <summary>DOTNET_HOST_PATH, this process when it is dotnet, three levels above the runtime directory, DOTNET_ROOT, PATH.</summary>
    private static string FindDotnet()
    {
        string executable = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        string runtimeRoot = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        IEnumerable<string?> candidates =
        [
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"),
            Path.GetFileName(Environment.ProcessPath) == executable ? Environment.ProcessPath : null,
            Path.Combine(runtimeRoot, executable),
            Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root ? Path.Combine(root, executable) : null,
            .. (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Select(directory => Path.Combine(directory, executable)),
        ];
        return candidates.FirstOrDefault(c => !string.IsNullOrEmpty(c) && File.Exists(c))
            ?? throw new FileNotFoundException("No dotnet executable found (DOTNET_HOST_PATH, this process, the runtime directory, DOTNET_ROOT, PATH).");
    }
}
