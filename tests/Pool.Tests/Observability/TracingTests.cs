using System.Diagnostics;

namespace Pool.Tests.Observability;

/// <summary>The activity source is process-wide, so these tests run alone, with the metrics tests.</summary>
[Collection(nameof(SerialMetricsTests))]
public sealed class TracingTests
{
    /// <summary>In the worker: the trace, span and parent span of the current activity, and the parent id of an activity started there.</summary>
    public static string SeenTrace(int _)
    {
        Activity? current = Activity.Current;
        if (current is null)
        {
            return "none";
        }

        using Activity inner = new Activity("work in the task").Start();
        return $"{current.TraceId.ToHexString()} {current.SpanId.ToHexString()} {current.ParentSpanId.ToHexString()} {inner.ParentId}";
    }

    [Fact(Timeout = 60_000)]
    public async Task An_activity_in_a_task_is_in_the_callers_trace_under_the_calls_and_the_chunks_activities()
    {
        var started = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ProcessPoolTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity =>
            {
                lock (started)
                {
                    started.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using ProcessPool pool = await TestPools.StartAsync();

        using var request = new Activity("request").Start();
        string[] seen = await pool.MapAsync(SeenTrace, Enumerable.Range(0, 8), chunkSize: 2).Within();
        request.Stop();

        Activity[] ours;
        lock (started)
        {
            ours = [.. started.Where(a => a.TraceId == request.TraceId)];
        }

        Activity call = ours.Should().ContainSingle(a => a.OperationName == "ProcessPool.Map").Subject;
        call.ParentSpanId.Should().Be(request.SpanId);
        Activity[] chunks = [.. ours.Where(a => a.OperationName == ProcessPoolTelemetry.ChunkActivityName)];
        chunks.Should().HaveCount(4).And.OnlyContain(c => c.ParentSpanId == call.SpanId && c.Kind == ActivityKind.Client);
        foreach (string line in seen)
        {
            string[] parts = line.Split(' ');
            parts.Should().HaveCount(4, line);
            parts[0].Should().Be(request.TraceId.ToHexString(), "the task runs in the caller's trace");
            chunks.Select(c => c.SpanId.ToHexString()).Should().Contain(parts[2], "the worker's activity is a child of the host's chunk activity");
            parts[3].Should().Be($"00-{parts[0]}-{parts[1]}-01", "an activity the task starts is a child of the worker's");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Without_a_listener_the_callers_trace_context_still_reaches_the_task()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        using var request = new Activity("request").Start();
        string seen = await pool.ApplyAsync(SeenTrace, 0).Task.Within();
        request.Stop();

        string[] parts = seen.Split(' ');
        parts[0].Should().Be(request.TraceId.ToHexString());
        parts[2].Should().Be(request.SpanId.ToHexString());
    }

    [Fact(Timeout = 60_000)]
    public async Task Without_a_current_activity_nothing_is_sent_and_the_task_sees_none()
    {
        await using ProcessPool pool = await TestPools.StartAsync();
        Activity.Current = null;
        (await pool.MapAsync(SeenTrace, [1, 2, 3]).Within()).Should().OnlyContain(s => s == "none");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_call_leaves_the_callers_current_activity_as_it_was()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ProcessPoolTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        await using ProcessPool pool = await TestPools.StartAsync();
        using var request = new Activity("request").Start();

        Task<int[]> map = pool.MapAsync(Functions.Square, [1, 2]);
        Activity.Current.Should().BeSameAs(request);
        await map.Within();
        Activity.Current.Should().BeSameAs(request);
    }
}
