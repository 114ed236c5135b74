using System.Text;
using Pool.Internal;

namespace Pool.Tests.Unit;

public class FrameSenderTests
{
    [Fact(Timeout = 30_000)]
    public async Task A_write_that_waits_never_holds_up_Flush_and_frames_keep_their_order()
    {
        var output = new GatedStream();
        using var sender = new FrameSender(output, capacity: 100, "test-sender");

        // Small and nothing unanswered: written on the caller's thread, at once.
        Send(sender, "a", unanswered: 1);
        output.Text.Should().Be("a");

        // More unanswered than the pipe surely takes: queued for the sender's thread, which now waits.
        output.Hold();
        Send(sender, "b", unanswered: 1_000);
        await output.Waiting.WaitAsync(TimeSpan.FromSeconds(10));

        // Small again, but behind a queued write: queued too, and Flush returns at once.
        var flushed = Task.Run(() => Send(sender, "c", unanswered: 1));
        (await Task.WhenAny(flushed, Task.Delay(TimeSpan.FromSeconds(10)))).Should().Be(flushed, "Flush never waits for the worker");
        output.Text.Should().Be("a");

        output.Release();
        (await output.WhenText("abc").WaitAsync(TimeSpan.FromSeconds(10))).Should().Be("abc");

        // A write after the queue drained (on whichever thread) still comes after the others.
        Send(sender, "d", unanswered: 1);
        (await output.WhenText("abcd").WaitAsync(TimeSpan.FromSeconds(10))).Should().Be("abcd");
    }

    private static void Send(FrameSender sender, string text, long unanswered)
    {
        sender.Frames.WriteBytes(Encoding.ASCII.GetBytes(text));
        sender.Flush(unanswered);
    }

    /// <summary>A pipe whose writes wait while it is held, as a full pipe's do.</summary>
    private sealed class GatedStream : Stream
    {
        private readonly ManualResetEventSlim _open = new(initialState: true);
        private readonly StringBuilder _text = new();
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private (int Length, TaskCompletionSource<string> Reached)? _wanted;

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        public Task Waiting => _waiting.Task;

        /// <summary>Completes with the text once it is <paramref name="expected"/> (or longer).</summary>
        public Task<string> WhenText(string expected)
        {
            var reached = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_text)
            {
                if (_text.Length >= expected.Length)
                {
                    reached.TrySetResult(_text.ToString());
                }
                else
                {
                    _wanted = (expected.Length, reached);
                }
            }

            return reached.Task;
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Hold() => _open.Reset();

        public void Release() => _open.Set();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (!_open.IsSet)
            {
                _waiting.TrySetResult();
                _open.Wait();
            }

            lock (_text)
            {
                _text.Append(Encoding.ASCII.GetString(buffer));
                if (_wanted is { } wanted && _text.Length >= wanted.Length)
                {
                    _wanted = null;
                    wanted.Reached.TrySetResult(_text.ToString());
                }
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
