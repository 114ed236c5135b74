using Microsoft.Extensions.Logging;

namespace Pool.Internal;

/// <summary>
/// The user's <see cref="ProcessPoolOptions.Logger"/>, wrapped so that a logger that throws cannot stop the
/// pool: the pool logs from its supervisor, timers and output pumps, where an exception would leave a
/// worker unreplaced or take down the process.
/// </summary>
internal sealed class GuardedLogger(ILogger inner) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
        catch (Exception e)
        {
            // Any exception from user code: the message goes to stderr, and the pool goes on.
            Console.Error.WriteLine($"ProcessPool: the logger threw {e.GetType().Name}: {e.Message}; the message was: {formatter(state, exception)}");
        }
    }
}
