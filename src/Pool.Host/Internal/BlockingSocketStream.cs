using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Pool.Internal;

/// <summary>
/// A local worker's accepted Unix socket, read and written with plain blocking system calls, the handshake included
/// (its reads time out with the socket's <see cref="Socket.ReceiveTimeout"/>: <see cref="TimeoutException"/>). A
/// .NET <see cref="Socket"/> used asynchronously once is registered with the runtime's epoll thread for good: every
/// frame a worker sent then woke that thread, which queued a work item to the thread pool, whose threads spun
/// waiting for more (issue 21: a third of the host's CPU in a <c>Map</c> of chunk size 1). Here only the reader
/// thread, asleep in <c>recv</c>, wakes. Dispose shuts the socket down first, which ends a read pending on another
/// thread (closing alone would not).
/// </summary>
internal sealed partial class BlockingSocketStream : Stream
{
    private const int GetFlags = 3;
    private const int SetFlags = 4;
    private const int NonBlocking = 0x800;
    private const int Interrupted = 4;
    private const int TimedOut = 11;
    private const int NoSignal = 0x4000;
    private const short PollIn = 1;

    private readonly Socket _socket;

    /// <param name="socket">The connected socket; this stream owns it from now on.</param>
    /// <exception cref="IOException">Its descriptor could not be made blocking.</exception>
    public BlockingSocketStream(Socket socket)
    {
        _socket = socket;
        int fd = (int)socket.SafeHandle.DangerousGetHandle();
        int flags = Fcntl(fd, GetFlags, 0);
        if (flags < 0 || Fcntl(fd, SetFlags, flags & ~NonBlocking) < 0)
        {
            throw new IOException($"The worker's socket could not be made blocking (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override unsafe int Read(Span<byte> buffer)
    {
        using var socket = new Descriptor(_socket.SafeHandle);
        fixed (byte* bytes = buffer)
        {
            while (true)
            {
                nint read = Receive(socket.Value, bytes, buffer.Length, 0);
                if (read >= 0)
                {
                    return (int)read;
                }

                ThrowUnlessInterrupted("recv");
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="milliseconds"/> for something to read, or for the end: true when a read would not
    /// wait (see <see cref="ReadTurns"/>: a caller that reads for its own result looks up between waits).
    /// </summary>
    public unsafe bool WaitReadable(int milliseconds)
    {
        using var socket = new Descriptor(_socket.SafeHandle);
        var poll = new PollDescriptor { Descriptor = socket.Value, Events = PollIn };
        int ready = Poll(&poll, 1, milliseconds);
        if (ready >= 0)
        {
            return ready > 0;
        }

        ThrowUnlessInterrupted("poll");
        return false;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        using var socket = new Descriptor(_socket.SafeHandle);
        fixed (byte* bytes = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint sent = Send(socket.Value, bytes + done, buffer.Length - done, NoSignal);
                if (sent >= 0)
                {
                    done += (int)sent;
                }
                else
                {
                    ThrowUnlessInterrupted("send");
                }
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed by the worker, or disposed before: nothing is pending on it.
            }

            _socket.Dispose();
        }

        base.Dispose(disposing);
    }

    private static void ThrowUnlessInterrupted(string call)
    {
        int errno = Marshal.GetLastPInvokeError();
        if (errno == TimedOut)
        {
            throw new TimeoutException($"The worker's socket timed out ({call}).");
        }

        if (errno != Interrupted)
        {
            throw new IOException($"The worker's socket failed: {call} gave errno {errno}.", errno);
        }
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollDescriptor* descriptors, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Receive(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static unsafe partial nint Send(int fd, byte* buffer, nint length, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }

    /// <summary>
    /// The socket's descriptor for one system call, kept open until disposed: a Dispose on another thread cannot close
    /// it (and let its number go to another file) while the call uses it. Throws <see cref="ObjectDisposedException"/>
    /// once the socket is closed.
    /// </summary>
    private readonly ref struct Descriptor
    {
        private readonly SafeHandle _handle;

        public Descriptor(SafeHandle handle)
        {
            bool added = false;
            handle.DangerousAddRef(ref added);
            _handle = handle;
            Value = (int)handle.DangerousGetHandle();
        }

        public int Value { get; }

        public void Dispose() => _handle.DangerousRelease();
    }
}
