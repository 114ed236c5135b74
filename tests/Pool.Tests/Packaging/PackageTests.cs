using System.Runtime.InteropServices;
using System.Text;
using CliWrap;
using CliWrap.Buffered;

namespace Pool.Tests.Packaging;

/// <summary>
/// The package as a user gets it: <c>dotnet pack</c> of Pool.Host, a fresh console app outside the repository
/// that references it from a local feed (with its own empty package folder, so no stale cache entry is read
/// and none is left behind), run with <c>dotnet run</c>, published framework-dependent, and published as a single file.
/// </summary>
[Trait("Category", "Package")]
public class PackageTests
{
    /// <summary>Per command: a Release pack took more than 3 minutes on a 2-core machine busy with other builds.</summary>
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
        (string root, string feed, string app, string version) = NewWorkspace("pp-package-");
        try
        {
            await PackAsync(root, feed, version, "Pool.Host");
            File.Exists(Path.Combine(feed, $"ProcessPool.{version}.nupkg")).Should().BeTrue();
            await WriteAppAsync(app, feed, $"""<PackageReference Include="ProcessPool" Version="{version}" />""", Program);

            AssertRanInAWorker(await RunAsync(app, "run"));

            await RunAsync(app, "publish", "-c", "Release", "-o", "out");
            AssertRanInAWorker(await RunAsync(app, Path.Combine("out", "app.dll")));
            AssertRanInAWorker(await RunProgramAsync(app, executable: Path.Combine(app, "out", OperatingSystem.IsWindows() ? "app.exe" : "app")));

            // A single-file app hosts workers when its assemblies are extracted to files (here under the test's own
            // directory: DOTNET_BUNDLE_EXTRACT_BASE_DIR), which IncludeAllContentForSelfExtract asks for. The single-file
            // analyzer only warns, and its package (ILLink.Tasks) is not in the offline sources of this test.
            await RunAsync(app, "publish", "-c", "Release", "-r", RuntimeInformation.RuntimeIdentifier, "--self-contained", "false",
                "-p:PublishSingleFile=true", "-p:IncludeAllContentForSelfExtract=true", "-p:EnableSingleFileAnalyzer=false", "-o", "single");
            Directory.GetFiles(Path.Combine(app, "single"), "*.dll").Should().BeEmpty("the assemblies are inside the single file");
            AssertRanInAWorker(await RunProgramAsync(app, executable: Path.Combine(app, "single", OperatingSystem.IsWindows() ? "app.exe" : "app")));
        }
        finally
        {
            DeleteWorkspace(root);
        }
    }

    private const string HostedProgram = """
        using Microsoft.Extensions.DependencyInjection;
        using Microsoft.Extensions.Hosting;
        using Pool;

        HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddProcessPool(configure: options => options with { Workers = 2 });
        using IHost host = builder.Build();
        await host.StartAsync();
        ProcessPool pool = host.Services.GetRequiredService<ProcessPool>();
        int offset = 1;
        int[] results = pool.Map(x => x * x + offset, Enumerable.Range(0, 5));
        int worker = pool.Apply(_ => Environment.ProcessId, 0);
        Console.WriteLine("results " + string.Join(",", results));
        Console.WriteLine($"host {Environment.ProcessId} worker {worker}");
        await host.StopAsync();
        """;

    [Fact(Timeout = 1_800_000)]
    public async Task The_hosting_package_starts_a_pool_with_a_generic_host_and_brings_the_pool_package_with_it()
    {
        (string root, string feed, string app, string version) = NewWorkspace("pp-hosting-");
        try
        {
            await PackAsync(root, feed, version, "Pool.Host", "Pool.Hosting");
            File.Exists(Path.Combine(feed, $"ProcessPool.Hosting.{version}.nupkg")).Should().BeTrue();
            // Microsoft.Extensions.Hosting from the ASP.NET Core shared framework: no package to restore for it.
            await WriteAppAsync(app, feed, $"""
                <PackageReference Include="ProcessPool.Hosting" Version="{version}" />
                <FrameworkReference Include="Microsoft.AspNetCore.App" />
                """, HostedProgram);
            AssertRanInAWorker(await RunAsync(app, "run"));
        }
        finally
        {
            DeleteWorkspace(root);
        }
    }

    /// <summary>A directory of its own under the temp directory: the feed, the app, and a version no cache has seen.</summary>
    private static (string Root, string Feed, string App, string Version) NewWorkspace(string prefix)
    {
        string id = Guid.NewGuid().ToString("N")[..12];
        string root = Path.Combine(Path.GetTempPath(), prefix + id);
        string app = Path.Combine(root, "app");
        Directory.CreateDirectory(app);
        return (root, Path.Combine(root, "feed"), app, "0.0.0-test." + id);
    }

    private static void DeleteWorkspace(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open (a build server) leaves the directory for the temp cleaner.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }

    /// <summary>Packs the projects of src/ named, with one version, into <paramref name="feed"/>.</summary>
    private static async Task PackAsync(string root, string feed, string version, params string[] projects)
    {
        foreach (string name in projects)
        {
            string project = Path.Combine(RepositoryRoot(), "src", name, name + ".csproj");
            await RunAsync(root, "pack", project, "-c", "Release", "-o", feed, $"-p:Version={version}");
        }
    }

    /// <summary>A console app with these package (or framework) references, that restores from the feed alone.</summary>
    private static async Task WriteAppAsync(string app, string feed, string references, string program)
    {
        await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                {references}
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), program);
        // The local feed, and this machine's package folder (already restored by this repository's build) for the
        // packages' dependencies (Microsoft.Extensions.*, MessagePack): no network needed.
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
        string program = executable ?? Dotnet();
        string command = $"`{program} {string.Join(' ', arguments)}`";
        using var timeout = new CancellationTokenSource(StepTimeout);
        BufferedCommandResult result;
        try
        {
            result = await Cli.Wrap(program)
                .WithArguments(arguments)
                .WithWorkingDirectory(directory)
                .WithEnvironmentVariables(ChildEnvironment(directory))
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(Encoding.UTF8, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // CliWrap killed the process tree on the cancellation.
            throw new TimeoutException($"{command} ran past {StepTimeout}.");
        }

        result.ExitCode.Should().Be(0, $"{command} in {directory} should succeed:\n{result.StandardOutput}\n{result.StandardError}");
        return result.StandardOutput;
    }

    /// <summary>
    /// Not the MSBuild and test-host settings of the `dotnet test` that runs this test (a null value removes a variable);
    /// a package folder of its own; no build servers or reused nodes left behind after the test.
    /// </summary>
    private static Dictionary<string, string?> ChildEnvironment(string directory)
    {
        var variables = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (string name in Environment.GetEnvironmentVariables().Keys.Cast<string>())
        {
            if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || name.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase) || name.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase))
            {
                variables[name] = null;
            }
        }

        variables["NUGET_PACKAGES"] = Path.Combine(Path.GetDirectoryName(directory.TrimEnd(Path.DirectorySeparatorChar)) ?? directory, "packages");
        variables["MSBUILDDISABLENODEREUSE"] = "1";
        variables["UseSharedCompilation"] = "false";
        variables["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        variables["DOTNET_NOLOGO"] = "1";
        variables["DOTNET_BUNDLE_EXTRACT_BASE_DIR"] = Path.Combine(Path.GetDirectoryName(directory.TrimEnd(Path.DirectorySeparatorChar)) ?? directory, "extracted");
        variables["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        return variables;
    }

    private static string Dotnet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
}
