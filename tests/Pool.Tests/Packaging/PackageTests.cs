using System.Diagnostics;
using System.Text;

namespace Pool.Tests.Packaging;

/// <summary>
/// The package as a user gets it: <c>dotnet pack</c> of Pool.Host, a fresh console app outside the repository
/// that references it from a local feed (with its own empty package folder, so no stale cache entry is read
/// and none is left behind), run with <c>dotnet run</c> and published framework-dependent.
/// </summary>
[Trait("Category", "Package")]
public class PackageTests
{
    // A Release pack took more than 3 minutes in 4 of 8 full runs while other builds and test runs shared the 2 cores.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(8);

    private const string Program = """
        using Pool;

        using var pool = new ProcessPool(2);
        int offset = 1;
        int[] results = pool.Map(x => x * x + offset, Enumerable.Range(0, 5));
        int worker = pool.Apply(_ => Environment.ProcessId, 0);
        Console.WriteLine("results " + string.Join(",", results));
        Console.WriteLine($"host {Environment.ProcessId} worker {worker}");
        """;

    [Fact(Timeout = 1_800_000)]
    public async Task The_packed_package_runs_a_lambda_in_a_worker_under_dotnet_run_and_when_published()
    {
        string id = Guid.NewGuid().ToString("N")[..12];
        string version = "0.0.0-test." + id;
        string root = Path.Combine(Path.GetTempPath(), "pp-package-" + id);
        string feed = Path.Combine(root, "feed");
        string app = Path.Combine(root, "app");
        Directory.CreateDirectory(app);
        try
        {
            string project = Path.Combine(RepositoryRoot(), "src", "Pool.Host", "Pool.Host.csproj");
            await RunAsync(root, "pack", project, "-c", "Release", "-o", feed, $"-p:Version={version}");
            File.Exists(Path.Combine(feed, $"ProcessPool.{version}.nupkg")).Should().BeTrue();

            await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="ProcessPool" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), Program);
            // The local feed, and this machine's package folder (already restored by this repository's build) for the
            // package's one dependency, Microsoft.Extensions.Logging.Abstractions: no network needed.
            string restored = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                    <add key="restored" value="{restored}" />
                  </packageSources>
                </configuration>
                """);

            AssertRanInAWorker(await RunAsync(app, "run"));

            await RunAsync(app, "publish", "-c", "Release", "-o", "out");
            AssertRanInAWorker(await RunAsync(app, Path.Combine("out", "app.dll")));
            AssertRanInAWorker(await RunProgramAsync(app, executable: Path.Combine(app, "out", OperatingSystem.IsWindows() ? "app.exe" : "app")));
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static void AssertRanInAWorker(string output)
    {
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().Contain("results 1,2,5,10,17", output);
        string pids = lines.Single(l => l.StartsWith("host ", StringComparison.Ordinal));
        string[] words = pids.Split(' ');
        int host = int.Parse(words[1], System.Globalization.CultureInfo.InvariantCulture);
        int worker = int.Parse(words[3], System.Globalization.CultureInfo.InvariantCulture);
        worker.Should().NotBe(host, "the lambda ran in a worker process: " + output);
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ProcessPool.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No ProcessPool.sln above {AppContext.BaseDirectory}.");
    }

    private static Task<string> RunAsync(string directory, params string[] arguments) => RunProgramAsync(directory, executable: null, arguments);

    /// <summary>Runs <c>dotnet</c> (or <paramref name="executable"/>) and returns its stdout; fails with both streams if it fails.</summary>
    private static async Task<string> RunProgramAsync(string directory, string? executable, params string[] arguments)
    {
        var info = new ProcessStartInfo(executable ?? Dotnet())
        {
            WorkingDirectory = directory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Not the MSBuild and test-host settings of the `dotnet test` that runs this test.
        foreach (string name in info.Environment.Keys.ToArray())
        {
            if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || name.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase) || name.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase))
            {
                info.Environment.Remove(name);
            }
        }

        // A package folder of its own; no build servers or reused nodes left behind after the test.
        info.Environment["NUGET_PACKAGES"] = Path.Combine(Path.GetDirectoryName(directory.TrimEnd(Path.DirectorySeparatorChar)) ?? directory, "packages");
        info.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        info.Environment["UseSharedCompilation"] = "false";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StepTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{info.FileName} {string.Join(' ', arguments)}` ran past {StepTimeout}.");
        }

        string output = await stdout;
        string errors = await stderr;
        process.ExitCode.Should().Be(0, $"`{info.FileName} {string.Join(' ', arguments)}` in {directory} should succeed:\n{output}\n{errors}");
        return output;
    }

    private static string Dotnet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
}
