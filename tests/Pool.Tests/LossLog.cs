using Microsoft.Extensions.Logging;

namespace Pool.Tests;

/// <summary>
/// What a pool said about its workers going away (warnings and errors: lost, killed, replacement failed) and
/// what they wrote to stderr, for the failure message of a test that expects its worker to survive: a rare
/// failure then says why the worker was replaced.
/// </summary>
internal sealed class LossLog : ILogger
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];
    private readonly TaskCompletionSource<string> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the first line logged: a test that makes a worker go away awaits the pool noticing.</summary>
    public Task<string> First => _first.Task;

    /// <summary>Options that log to this, and that still pass every output line to their own handler.</summary>
    public ProcessPoolOptions Attach(ProcessPoolOptions options)
    {
        Action<WorkerOutputLine>? handler = options.WorkerOutput;
        return options with
        {
            Logger = this,
            WorkerOutput = line =>
            {
                if (line.IsError)
                {
                    Add(line.ToString());
                }

                handler?.Invoke(line);
            },
        };
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            Add($"{logLevel}: {formatter(state, exception)}{(exception is null ? string.Empty : " " + exception)}");
        }
    }

    public override string ToString()
    {
        lock (_lock)
        {
            return _lines.Count == 0 ? "(the pool logged no warning)" : string.Join(Environment.NewLine, _lines);
        }
    }

    private void Add(string line)
    {
        lock (_lock)
        {
            _lines.Add(line);
        }

        _first.TrySetResult(line);
    }
}
