using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using Pool.Contracts;

namespace Pool.Bench.References;

/// <summary>
/// The transport floor of W2 and W4: a named pipe (a Unix domain socket, CurrentUserOnly, as the pool's) to a
/// child process that answers each message. No serializer, no dispatcher: what remains of a ProcessPool
/// figure above this one is the library's own cost.
/// </summary>
/// <remarks>
/// A message is an <c>int32</c> header (payload length; the top bit asks for an acknowledgement instead of
/// an echo) and the payload. The child echoes header and payload, or answers with the 4-byte length.
/// </remarks>
internal sealed class RawPipe : IDisposable
{
    private const int AckOnly = unchecked((int)0x8000_0000);

    private readonly NamedPipeServerStream _pipe;
    private readonly Process _child;

    private RawPipe(NamedPipeServerStream pipe, Process child)
    {
        _pipe = pipe;
        _child = child;
    }

    /// <summary>Starts the echo child and waits until it has connected.</summary>
    public static RawPipe Start()
    {
        string name = "pb" + Guid.NewGuid().ToString("N");
        var pipe = new NamedPipeServerStream(name, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous | PipeOptions.CurrentUserOnly, PipeBuffers.Size, PipeBuffers.Size);
        Process? child = null;
        try
        {
            child = Process.Start(BenchChild.StartInfo("--pipe-echo", name))!;
            child.StandardOutput.Close();
            child.ErrorDataReceived += static (_, e) =>
            {
                if (e.Data is { } line)
                {
                    Console.Error.WriteLine("[echo child] " + line);
                }
            };
            child.BeginErrorReadLine();
            pipe.WaitForConnectionAsync().WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
            return new RawPipe(pipe, child);
        }
        catch
        {
            pipe.Dispose();
            Kill(child);
            throw;
        }
    }

    /// <summary>Microseconds per round trip of a 16-byte message answered by a 16-byte echo.</summary>
    public double PingPong(int count)
    {
        byte[] message = new byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(message, message.Length - 4);
        byte[] reply = new byte[16];
        TimeSpan elapsed = Measure.Time(() =>
        {
            for (int i = 0; i < count; i++)
            {
                _pipe.Write(message);
                _pipe.ReadExactly(reply);
            }
        });
        return elapsed.TotalMicroseconds / count;
    }

    /// <summary>
    /// MB/s (10^6 bytes) of payload moved by streaming <paramref name="count"/> messages of <paramref name="payload"/>
    /// bytes, written by one thread while another reads the answers: acknowledgements (one way), or the
    /// payload itself (<paramref name="echo"/>, which moves every byte twice and counts both). The echoes are read into one
    /// reused buffer, or, with <paramref name="newReply"/> (an array of <paramref name="payload"/> bytes), each into a new
    /// array, all kept until the last has come: what a caller of <c>Map</c> gets, and pays for in fresh memory.
    /// </summary>
    public double Stream(int payload, int count, bool echo, Func<Array>? newReply = null)
    {
        byte[] message = new byte[4 + payload];
        BinaryPrimitives.WriteInt32LittleEndian(message, echo ? payload : payload | AckOnly);
        byte[] reply = new byte[echo ? 4 + payload : 4];
        Array[]? kept = newReply is null ? null : new Array[count];
        TimeSpan elapsed = Measure.Time(() =>
        {
            Task writer = Task.Factory.StartNew(
                () =>
                {
                    for (int i = 0; i < count; i++)
                    {
                        _pipe.Write(message);
                    }
                },
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            for (int i = 0; i < count; i++)
            {
                if (kept is null)
                {
                    _pipe.ReadExactly(reply);
                    continue;
                }

                // As a Map's caller gets them: each echo in an array of its own, all of them kept to the end.
                _pipe.ReadExactly(reply.AsSpan(0, 4));
                Array array = newReply!();
                _pipe.ReadExactly(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(array), payload));
                kept[i] = array;
            }

            writer.GetAwaiter().GetResult();
        });
        GC.KeepAlive(kept);
        return (double)payload * count * (echo ? 2 : 1) / 1e6 / elapsed.TotalSeconds;
    }

    /// <summary>Closes the pipe; the child sees end-of-stream and exits.</summary>
    public void Dispose()
    {
        _pipe.Dispose();
        if (!_child.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            Kill(_child);
        }

        _child.Dispose();
    }

    /// <summary>The child's side (<c>Pool.Bench --pipe-echo NAME</c>): answers every message until end-of-stream.</summary>
    public static int RunEchoChild(string pipeName)
    {
        using var pipe = new NamedPipeClientStream(".", pipeName, PipeDirection.InOut, PipeOptions.CurrentUserOnly);
        pipe.Connect(TimeSpan.FromSeconds(30));
        PipeBuffers.Enlarge(pipe); // the same buffers as the pool's pipes, so that this stays their limit
        var input = new MessageReader(pipe);
        byte[] ack = new byte[4];
        while (input.TryRead(out int header, out ArraySegment<byte> message))
        {
            if ((header & AckOnly) != 0)
            {
                BinaryPrimitives.WriteInt32LittleEndian(ack, header & ~AckOnly);
                pipe.Write(ack);
            }
            else
            {
                pipe.Write(message);
            }
        }

        return 0;
    }

    private static void Kill(Process? process)
    {
        try
        {
            process?.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It has already exited.
        }
    }

    /// <summary>Reads whole messages with as few reads as the data allows (one per small message).</summary>
    private sealed class MessageReader(Stream stream)
    {
        private byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        /// <summary>The next message (header included), valid until the next call; false at end-of-stream.</summary>
        public bool TryRead(out int header, out ArraySegment<byte> message)
        {
            header = 0;
            message = default;
            if (_start == _end)
            {
                _start = _end = 0;
            }

            if (!Fill(4))
            {
                return false;
            }

            header = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
            int length = 4 + (header & ~AckOnly);
            if (!Fill(length))
            {
                return false;
            }

            message = new ArraySegment<byte>(_buffer, _start, length);
            _start += length;
            return true;
        }

        private bool Fill(int needed)
        {
            if (_buffer.Length - _start < needed)
            {
                byte[] target = _buffer.Length < needed ? new byte[Math.Max(needed, _buffer.Length * 2)] : _buffer;
                Buffer.BlockCopy(_buffer, _start, target, 0, _end - _start);
                _end -= _start;
                _start = 0;
                _buffer = target;
            }

            while (_end - _start < needed)
            {
                int read = stream.Read(_buffer, _end, _buffer.Length - _end);
                if (read == 0)
                {
                    return false;
                }

                _end += read;
            }

            return true;
        }
    }
}
