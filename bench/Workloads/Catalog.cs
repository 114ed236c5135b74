namespace Pool.Bench.Workloads;

/// <summary>One workload of shared/WORKLOADS.md: its C# part, and the Python script of its references if it has one.</summary>
internal sealed record Workload(string Id, string Title, Action<BenchContext> Run, string? PythonScript = null);

/// <summary>The workloads this bench runs, in order. W8 (orphans) and W10 (what ships) are not measured here.</summary>
internal static class Catalog
{
    public static readonly Workload[] All =
    [
        new("W1", "tiny tasks: Map of x + 1", W1Tiny.Run, "w1_tiny.py"),
        new("W2", "round trip: sequential Apply", W2RoundTrip.Run, "w2_roundtrip.py"),
        new("W3", "CPU-bound: 64 Monte Carlo π tasks", W3CpuBound.Run, "w3_cpu.py"),
        new("W4", "payload: 1 MiB arrays", W4Payload.Run, "w4_payload.py"),
        new("W5", "start-up of a 2-worker pool", W5Startup.Run, "w5_startup.py"),
        new("W6", "crash: task 50 of 100 ends its worker", W6Crash.Run),
        new("W7", "runaway: a task that never returns, 1 s timeout", W7Runaway.Run),
        new("W9", "lazy input: ImapAsync over an endless sequence", W9LazyInput.Run, "w9_lazy.py"),
        new("W11", "records: Map and sequential Apply, MessagePack and JSON", W11Records.Run, "w11_records.py"),
        new(S1Slurm.Id, "Slurm: start-up, W1-W3 with workers on 2 nodes, against local workers", S1Slurm.Run),
    ];

    public static IEnumerable<string> Ids => All.Select(w => w.Id);
}
