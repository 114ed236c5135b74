using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pool.Hosting;

/// <summary>
/// The hosted service behind <c>AddProcessPool</c>: starts the pool with the host and ends it on shutdown. Its
/// options are the bound ones, changed by the app's <c>configure</c>, with the app's logger and meter factory where
/// they are not set.
/// </summary>
internal sealed class ProcessPoolService(ProcessPoolOptions bound, Func<ProcessPoolOptions, ProcessPoolOptions>? configure, IServiceProvider services)
    : IHostedService, IAsyncDisposable
{
    private ProcessPool? _pool;

    /// <exception cref="InvalidOperationException">The host has not started yet.</exception>
    public ProcessPool Pool => Volatile.Read(ref _pool) ?? throw new InvalidOperationException(
        "The ProcessPool starts with the host: resolve it once the host has started (in a request, a controller, or a BackgroundService's ExecuteAsync), not while services are built.");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        ProcessPoolOptions options = configure is null ? bound : configure(bound) ?? throw new InvalidOperationException("The configure function of AddProcessPool returned null: return the options (options => options with { ... }).");
        options = options with
        {
            Logger = options.Logger ?? services.GetService<ILogger<ProcessPool>>(),
            MeterFactory = options.MeterFactory ?? services.GetService<IMeterFactory>(),
        };
        Volatile.Write(ref _pool, await ProcessPool.StartAsync(options, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>The host stops: no new work; queued work may finish until the host's shutdown timeout, then the workers are killed.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _pool) is not { } pool)
        {
            return;
        }

        pool.Close();
        try
        {
            await pool.JoinAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The shutdown timeout passed: what is still running is ended now.
            await pool.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => Volatile.Read(ref _pool) is { } pool ? pool.DisposeAsync() : ValueTask.CompletedTask;
}
