using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pool.Hosting.Tests;

/// <summary>What the workers run.</summary>
public static class Work
{
    public static string Square(int x) => $"{x * x} from {Environment.ProcessId}";
}

public sealed class HostingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Keeps the events the pool logs, by name.</summary>
    private sealed class RecordingProvider : ILoggerProvider, ILogger
    {
        private readonly List<(LogLevel Level, string Event)> _entries = [];

        public (LogLevel Level, string Event)[] Entries
        {
            get
            {
                lock (_entries)
                {
                    return [.. _entries];
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => categoryName == typeof(ProcessPool).FullName ? this : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_entries)
            {
                _entries.Add((logLevel, eventId.Name ?? ""));
            }
        }

        public void Dispose()
        {
        }
    }

    private static void AssertGone(IEnumerable<int> processIds)
    {
        foreach (int pid in processIds)
        {
            File.Exists($"/proc/{pid}/stat").Should().BeFalse($"worker {pid} must end when the host stops");
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_generic_host_binds_the_options_from_configuration_starts_the_workers_with_the_host_and_ends_them_when_it_stops()
    {
        var logs = new RecordingProvider();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ProcessPool:Workers"] = "1",
            ["ProcessPool:TaskTimeout"] = "00:00:45",
            ["ProcessPool:MaxTasksPerWorker"] = "1000",
        });
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddProcessPool();
        using IHost host = builder.Build();

        var factory = host.Services.GetRequiredService<IMeterFactory>();
        long completed = 0;
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Scope == factory && instrument.Name == ProcessPoolTelemetry.TasksCompleted)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref completed, value));
        meters.Start();

        FluentActions.Invoking(() => host.Services.GetRequiredService<ProcessPool>())
            .Should().Throw<InvalidOperationException>().WithMessage("*starts with the host*");

        await host.StartAsync().WaitAsync(Bound);
        ProcessPool pool = host.Services.GetRequiredService<ProcessPool>();
        pool.WorkerCount.Should().Be(1, "Workers came from configuration");
        ProcessPoolOptions bound = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ProcessPoolOptions>>().Value;
        bound.Should().Match<ProcessPoolOptions>(o => o.TaskTimeout == TimeSpan.FromSeconds(45) && o.MaxTasksPerWorker == 1000);
        int[] workers = [.. pool.ProcessIds];
        workers.Should().ContainSingle().Which.Should().NotBe(Environment.ProcessId);
        logs.Entries.Should().Contain((LogLevel.Debug, "WorkerStarted"), "the pool logs through the app's logger");

        string[] results = await pool.MapAsync(Work.Square, [2, 3]).WaitAsync(Bound);
        results.Should().Equal($"4 from {workers[0]}", $"9 from {workers[0]}");
        Interlocked.Read(ref completed).Should().Be(2, "the pool records on the app's meter factory");

        await host.StopAsync().WaitAsync(Bound);
        AssertGone(workers);
        FluentActions.Invoking(() => pool.Map(Work.Square, [1])).Should().Throw<InvalidOperationException>();
    }

    [Fact(Timeout = 120_000)]
    public async Task A_minimal_api_answers_a_real_http_request_with_a_value_computed_by_a_worker()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddProcessPool(configure: options => options with { Workers = 1 });
        await using WebApplication app = builder.Build();
        app.MapGet("/square/{x:int}", async (int x, ProcessPool pool) => await pool.ApplyAsync(Work.Square, x));

        await app.StartAsync().WaitAsync(Bound);
        int[] workers = [.. app.Services.GetRequiredService<ProcessPool>().ProcessIds];
        workers.Should().ContainSingle("the workers start with the host, before the first request");

        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        string answer = await client.GetStringAsync("/square/7").WaitAsync(Bound);
        answer.Should().Be($"49 from {workers[0]}");

        await app.StopAsync().WaitAsync(Bound);
        AssertGone(workers);
    }
}
