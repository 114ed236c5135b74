using Microsoft.Extensions.Logging;

namespace Pool.Tests.Observability;

public sealed class LoggingTests
{
    private sealed record Entry(LogLevel Level, string EventName, string Message, IReadOnlyDictionary<string, object?> Fields);

    /// <summary>An <see cref="ILogger"/> that keeps every entry, and signals the first that matches a condition.</summary>
    private sealed class RecordingLogger(Func<Entry, bool> awaited) : ILogger
    {
        private readonly Lock _lock = new();
        private readonly List<Entry> _entries = [];

        public TaskCompletionSource Seen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Entry[] Entries
        {
            get
            {
                lock (_lock)
                {
                    return [.. _entries];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var fields = new Dictionary<string, object?>();
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                foreach (KeyValuePair<string, object?> pair in pairs)
                {
                    fields[pair.Key] = pair.Value;
                }
            }

            var entry = new Entry(logLevel, eventId.Name ?? "", formatter(state, exception), fields);
            lock (_lock)
            {
                _entries.Add(entry);
            }

            if (awaited(entry))
            {
                Seen.TrySetResult();
            }
        }
    }

    [Fact]
    public async Task A_crash_is_logged_as_a_warning_with_its_exit_code_and_the_replacement_as_information()
    {
        var logger = new RecordingLogger(e => e.EventName == "ReplacementStarted");
        ProcessPool pool = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 1, Logger = logger, WorkerOutput = _ => { } });
        try
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [1, (int)CrashKind.Exit1, 3], chunkSize: 1).Within();
            outcomes.Count(o => !o.Succeeded).Should().Be(1);
            await logger.Seen.Task.Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        Entry[] entries = logger.Entries;
        Entry crash = entries.Should().ContainSingle(e => e.EventName == "WorkerCrashed").Subject;
        crash.Level.Should().Be(LogLevel.Warning);
        crash.Fields["ExitCode"].Should().Be(1);
        crash.Fields.Should().ContainKeys("WorkerId", "ProcessId", "Signal");
        Entry replacement = entries.Should().ContainSingle(e => e.EventName == "ReplacementStarted").Subject;
        replacement.Level.Should().Be(LogLevel.Information);
        entries.Where(e => e.EventName == "WorkerStarted").Should().HaveCount(2).And.OnlyContain(e => e.Level == LogLevel.Debug);
        entries.Should().Contain(e => e.EventName == "WorkerExited" && e.Level == LogLevel.Debug, "the replacement exits as expected when the pool is disposed");
    }

    [Fact]
    public async Task A_fail_fast_is_one_warning_with_the_end_of_the_workers_stderr_not_one_warning_per_line()
    {
        var logger = new RecordingLogger(e => e.EventName == "ReplacementStarted");
        ProcessPool pool = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 1, Logger = logger });
        try
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [(int)CrashKind.FailFast], chunkSize: 1).Within();
            outcomes[0].Exception.Should().BeOfType<WorkerCrashedException>();
            await logger.Seen.Task.Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        Entry[] entries = logger.Entries;
        entries.Where(e => e.Level >= LogLevel.Warning).Should().ContainSingle("a crash is one warning, whatever its stderr printed")
            .Which.EventName.Should().Be("WorkerCrashed");
        Entry crash = entries.Single(e => e.EventName == "WorkerCrashed");
        crash.Message.Should().Contain("The end of its stderr:").And.Contain("ProcessPool test fail-fast");
        entries.Where(e => e.EventName == "WorkerStandardError").Should().NotBeEmpty().And.OnlyContain(e => e.Level == LogLevel.Information);
    }

    [Fact]
    public async Task Worker_output_goes_to_the_logger_when_no_output_handler_is_set()
    {
        var logger = new RecordingLogger(e => e.EventName == "WorkerStandardOutput");
        ProcessPool pool = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 1, Logger = logger });
        try
        {
            await pool.ApplyAsync(Functions.AnnounceAndSleep, 1).Task.Within();
            await logger.Seen.Task.Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        Entry line = logger.Entries.First(e => e.EventName == "WorkerStandardOutput");
        line.Level.Should().Be(LogLevel.Information);
        line.Fields["Text"].Should().Be("sleeping 1 ms");
        line.Fields["ProcessId"].Should().Be(pool.StartedProcessIds[0]);
    }

    [Fact]
    public async Task A_task_past_its_timeout_is_logged_as_a_warning_with_its_index()
    {
        var logger = new RecordingLogger(e => e.EventName == "TaskTimedOut");
        ProcessPool pool = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 1, Logger = logger, WorkerOutput = _ => { } });
        try
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Functions.Sleep, [1, 5_000], chunkSize: 1, taskTimeout: TimeSpan.FromMilliseconds(300)).Within();
            outcomes[1].Exception.Should().BeOfType<TaskTimeoutException>();
            await logger.Seen.Task.Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        Entry timedOut = logger.Entries.First(e => e.EventName == "TaskTimedOut");
        timedOut.Level.Should().Be(LogLevel.Warning);
        timedOut.Fields["TaskIndex"].Should().Be(1L);
    }

    /// <summary>A logger that throws from every call.</summary>
    private sealed class ThrowingLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            throw new InvalidOperationException("this logger is broken");
    }

    [Fact]
    public async Task A_logger_that_throws_does_not_stop_the_pool_from_replacing_a_crashed_worker()
    {
        ProcessPool pool = await ProcessPool.StartAsync(new ProcessPoolOptions { Workers = 1, Logger = new ThrowingLogger(), WorkerOutput = _ => { } });
        try
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [1, (int)CrashKind.Exit1, 3], chunkSize: 1).Within();
            outcomes.Select(o => o.Succeeded).Should().Equal(true, false, true);
            await pool.WhenAllWorkersAsync().Within();
            (await pool.MapAsync(Functions.Square, [4]).Within()).Should().Equal(16);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }
    }
}
