using System.Diagnostics;

namespace Pool.Tests.Faults;

/// <summary>Runs alone: it bounds the host's allocations, which GC.GetTotalAllocatedBytes counts for the whole process.</summary>
[CollectionDefinition(nameof(CorruptStreamTests), DisableParallelization = true)]
public sealed class SerialCorruptStreamTests;

/// <summary>A task that corrupts its worker's stream to the pool costs that task only, in bounded time.</summary>
[Collection(nameof(CorruptStreamTests))]
public class CorruptStreamTests
{
    public static TheoryData<StreamFault> Faults => [.. Enum.GetValues<StreamFault>()];

    [Theory(Timeout = 90_000)]
    [MemberData(nameof(Faults))]
    public async Task A_task_that_corrupts_its_pipe_fails_with_the_corrupt_stream_error_and_the_others_succeed(StreamFault fault)
    {
        var log = new LossLog();
        TimeSpan timeout = TimeSpan.FromSeconds(5);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: log.Attach(new ProcessPoolOptions()));
        int[] inputs = [(int)fault, .. Enumerable.Range(1, 7)];
        long allocatedBefore = GC.GetTotalAllocatedBytes();
        Stopwatch clock = Stopwatch.StartNew();

        // The faulty task runs first, so that no other result is on its way when it writes.
        Outcome<int>[] outcomes = await pool.MapOutcomesAsync(StreamFaults.DoubleOrCorrupt, inputs, chunkSize: 1, taskTimeout: timeout).Within();

        clock.Elapsed.Should().BeLessThan(timeout + TimeSpan.FromSeconds(10), "a stalled frame ends within the task timeout");
        (GC.GetTotalAllocatedBytes() - allocatedBefore).Should().BeLessThan(256L << 20, "nothing the size of a forged length is allocated");
        CorruptStreamException error = outcomes[0].Exception.Should().BeOfType<CorruptStreamException>().Subject;
        error.TaskIndex.Should().Be(0);
        error.Message.Should().Contain("corrupt").And.Contain("file descriptor it does not own");
        for (int i = 1; i < inputs.Length; i++)
        {
            outcomes[i].Value.Should().Be(2 * i, $"task {i} did not corrupt anything ({log})");
        }

        (await pool.ApplyAsync(StreamFaults.DoubleOrCorrupt, 21).Task.Within()).Should().Be(42, "the worker was replaced");
    }

    [Theory(Timeout = 90_000)]
    [MemberData(nameof(Faults))]
    public async Task A_synchronous_apply_whose_task_corrupts_its_pipe_fails_with_the_corrupt_stream_error(StreamFault fault)
    {
        // The caller of a synchronous Apply reads its link itself (ReadTurns): a forged length, a stalled frame or a
        // frame nobody asked for must end its call as they end the reader thread's, never leave it in recv.
        var log = new LossLog();
        TimeSpan timeout = TimeSpan.FromSeconds(5);
        await using ProcessPool pool = await TestPools.StartAsync(workers: 1, options: log.Attach(new ProcessPoolOptions()));
        pool.Apply(StreamFaults.DoubleOrCorrupt, 1).Should().Be(2);
        Stopwatch clock = Stopwatch.StartNew();

        Task<int> call = Task.Factory.StartNew(() => pool.Apply(StreamFaults.DoubleOrCorrupt, (int)fault, taskTimeout: timeout), TaskCreationOptions.LongRunning);

        (await call.Awaiting(c => c.Within()).Should().ThrowAsync<CorruptStreamException>()).Which.Message.Should().Contain("corrupt");
        clock.Elapsed.Should().BeLessThan(timeout + TimeSpan.FromSeconds(10), "a stalled frame ends within the task timeout");
        pool.Apply(StreamFaults.DoubleOrCorrupt, 21).Should().Be(42, $"the worker was replaced ({log})");
    }
}
