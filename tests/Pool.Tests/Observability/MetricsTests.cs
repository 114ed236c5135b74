using System.Diagnostics.Metrics;
using Pool.Internal;

namespace Pool.Tests.Observability;

/// <summary>The instruments are process-wide, so these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(SerialMetricsTests), DisableParallelization = true)]
public sealed class SerialMetricsTests;

[Collection(nameof(SerialMetricsTests))]
public sealed class MetricsTests : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _totals = [];
    private readonly List<double> _durations = [];
    private readonly TaskCompletionSource _restarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public MetricsTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PoolMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (_lock)
            {
                _totals[instrument.Name] = _totals.GetValueOrDefault(instrument.Name) + value;
            }

            if (instrument.Name == "processpool.workers.restarts")
            {
                _restarted.TrySetResult();
            }
        });
        _listener.SetMeasurementEventCallback<double>((_, value, _, _) =>
        {
            lock (_lock)
            {
                _durations.Add(value);
            }
        });
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    [Fact]
    public async Task A_map_of_ten_items_records_ten_submitted_ten_completed_and_none_queued()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            int[] results = await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10), chunkSize: 3).Within();
            results.Should().HaveCount(10);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        lock (_lock)
        {
            _totals.GetValueOrDefault("processpool.tasks.submitted").Should().Be(10);
            _totals.GetValueOrDefault("processpool.tasks.completed").Should().Be(10);
            _totals.GetValueOrDefault("processpool.tasks.failed").Should().Be(0);
            _totals.GetValueOrDefault("processpool.tasks.queued").Should().Be(0, "every task submitted was sent");
            _durations.Should().HaveCount(4, "one duration per chunk of 3, 3, 3 and 1 tasks").And.OnlyContain(d => d >= 0);
        }
    }

    [Fact]
    public async Task A_failed_task_and_a_crashed_worker_record_failures_and_a_restart()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            Outcome<int>[] outcomes = await pool.MapOutcomesAsync(Crashes.DoubleOrCrash, [1, 2, (int)CrashKind.Exit1, 4], chunkSize: 1).Within();
            outcomes.Count(o => !o.Succeeded).Should().Be(1);
            await _restarted.Task.Within();
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        lock (_lock)
        {
            _totals.GetValueOrDefault("processpool.tasks.completed").Should().Be(3);
            _totals.GetValueOrDefault("processpool.tasks.failed").Should().Be(1);
            _totals.GetValueOrDefault("processpool.workers.restarts").Should().BeGreaterThanOrEqualTo(1);
        }
    }

    [Fact]
    public async Task An_imap_records_its_items_as_they_are_read()
    {
        ProcessPool pool = await TestPools.StartAsync();
        try
        {
            List<int> results = [];
            await foreach (int result in pool.ImapAsync(Functions.Square, Enumerable.Range(0, 50), chunkSize: 7))
            {
                results.Add(result);
            }

            results.Should().HaveCount(50);
        }
        finally
        {
            await TestPools.DisposeAndAssertNoWorkersAsync(pool);
        }

        lock (_lock)
        {
            _totals.GetValueOrDefault("processpool.tasks.submitted").Should().Be(50);
            _totals.GetValueOrDefault("processpool.tasks.completed").Should().Be(50);
            _totals.GetValueOrDefault("processpool.tasks.queued").Should().Be(0);
        }
    }
}
