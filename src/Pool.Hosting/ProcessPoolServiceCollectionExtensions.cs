using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Pool;
using Pool.Hosting;

// The extension is found where IServiceCollection is, as every Add... of Microsoft.Extensions does.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="ProcessPool"/> in an application's services: <c>builder.Services.AddProcessPool()</c>.</summary>
public static class ProcessPoolServiceCollectionExtensions
{
    /// <summary>The configuration section the options are bound from by default: <c>"ProcessPool"</c>.</summary>
    public const string DefaultSectionName = "ProcessPool";

    /// <summary>
    /// Registers one <see cref="ProcessPool"/> for the application, as a singleton, with a hosted service that starts its
    /// workers when the host starts (not at the first request) and ends them when it stops: the work already queued may
    /// finish within the host's shutdown timeout, then the workers are terminated. The options are bound from the
    /// configuration section <paramref name="sectionName"/> (<c>"ProcessPool": { "Workers": 4, "TaskTimeout": "00:00:30" }</c>:
    /// any <see cref="ProcessPoolOptions"/> property of a plain type), then passed to <paramref name="configure"/> for
    /// the rest (a serializer, an initializer, progress). Unless they are set, <see cref="ProcessPoolOptions.Logger"/> is
    /// the app's <c>ILogger&lt;ProcessPool&gt;</c> and <see cref="ProcessPoolOptions.MeterFactory"/> the app's
    /// <see cref="System.Diagnostics.Metrics.IMeterFactory"/>. Inject <see cref="ProcessPool"/> where you need it.
    /// Python has no equivalent.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="sectionName">The configuration section to bind; <c>"ProcessPool"</c> by default.</param>
    /// <param name="configure">Changes the bound options: <c>options =&gt; options with { Serializer = new JsonPoolSerializer() }</c>.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <example><code>
    /// builder.Services.AddProcessPool();
    /// app.MapGet("/square/{x}", (int x, ProcessPool pool) =&gt; pool.ApplyAsync(Square, x).Task);
    /// </code></example>
    public static IServiceCollection AddProcessPool(
        this IServiceCollection services, string sectionName = DefaultSectionName, Func<ProcessPoolOptions, ProcessPoolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(sectionName);
        services.AddOptions<ProcessPoolOptions>().Configure<IServiceProvider>((options, provider) =>
        {
            if (provider.GetService<IConfiguration>() is { } configuration)
            {
                configuration.GetSection(sectionName).Bind(options);
            }
        });
        services.TryAddSingleton(provider => new ProcessPoolService(
            provider.GetRequiredService<IOptions<ProcessPoolOptions>>().Value, configure, provider));
        services.TryAddSingleton(provider => provider.GetRequiredService<ProcessPoolService>().Pool);
        services.AddHostedService(provider => provider.GetRequiredService<ProcessPoolService>());
        return services;
    }
}
