using System.Buffers;
using Pool.Contracts;
using Pool.Worker;

namespace Pool.Tests.Unit;

/// <summary>The worker's executor for overlapping async tasks, driven directly: no process, no pipe.</summary>
public class ConcurrentExecutorTests
{
    [Fact(Timeout = 60_000)]
    public async Task The_executor_is_idle_only_once_the_last_outcome_is_written()
    {
        // What waits for the executor to be idle (a synchronous function, the end of input) writes without the
        // lock; had it started while the thread that reported the last async outcome was still flushing it, the
        // two would have interleaved on the pipe and the host would have killed the worker for a corrupt stream.
        using var pipe = new ObservedStream();
        using var output = new ResultWriter(pipe);
        using ProgressCell cell = ProgressCell.CreateLocal();
        var executor = new ConcurrentExecutor(2, new WorkerContext(output, cell), _ => { });
        ChunkWork<int, int> chunk = WaitingForCancellation(chunkId: 7, count: 2);

        await chunk.StartConcurrentlyAsync(executor).Within();
        Task idle = executor.WhenIdleAsync();
        idle.IsCompleted.Should().BeFalse("both tasks wait for their tokens");
        pipe.Idle = idle;
        chunk.Cancel();
        await idle.Within();

        pipe.WroteWhileIdle.Should().BeFalse("the executor must not be idle while an outcome is still being written");
        Frames(pipe.ToArray()).Should().Equal(new FailedMessage(7, 0, 1, FailureKind.Canceled, null), new FailedMessage(7, 1, 1, FailureKind.Canceled, null));
    }

    private static ChunkWork<int, int> WaitingForCancellation(int chunkId, int count)
    {
        var codecs = new CodecProvider(PoolSerializer.Default);
        var function = new BoundFunction<int, int>(
            nameof(WaitForCancellationAsync), new Args1<int>(codecs.Get<int>()), codecs.Get<int>(), null, (x, token) => new ValueTask<int>(WaitForCancellationAsync(x, token)), takesToken: true);
        // Rented, as the worker's decoder does: the chunk returns it once every task is reported.
        int[] values = ArrayPool<int>.Shared.Rent(count);
        return new ChunkWork<int, int>(function, new RunHeader(chunkId, 1, count, RunFlags.None), values, null);
    }

    private static async Task<int> WaitForCancellationAsync(int x, CancellationToken token)
    {
        await Task.Delay(Timeout.Infinite, token).ConfigureAwait(false);
        return x;
    }

    private static List<FailedMessage> Frames(byte[] bytes)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        var frames = new List<FailedMessage>();
        while (Framing.TryReadFrame(ref buffer, out MessageType type, out ReadOnlySequence<byte> payload))
        {
            type.Should().Be(MessageType.Failed);
            frames.Add(FailedMessage.Read(payload));
        }

        buffer.Length.Should().Be(0, "the stream holds whole frames only");
        return frames;
    }

    /// <summary>A stream that notes whether <see cref="Idle"/> had completed when something was written to it.</summary>
    private sealed class ObservedStream : MemoryStream
    {
        private volatile bool _wroteWhileIdle;

        public Task? Idle { get; set; }

        public bool WroteWhileIdle => _wroteWhileIdle;

        public override void Write(byte[] buffer, int offset, int count)
        {
            Observe();
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Observe();
            base.Write(buffer);
        }

        private void Observe()
        {
            if (Idle is { IsCompleted: true })
            {
                _wroteWhileIdle = true;
            }
        }
    }
}
