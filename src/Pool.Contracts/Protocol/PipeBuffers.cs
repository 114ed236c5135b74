using System.IO.Pipes;
using System.Net.Sockets;

namespace Pool.Contracts;

/// <summary>
/// The kernel buffer size of the pool's pipes, both ways. On Linux and macOS a .NET named pipe is a Unix
/// domain socket whose default send buffer (about 208 KiB) makes a megabyte argument cross in five pieces,
/// each a sleep and a wake-up of both sides; with 1 MiB it crosses in one (W4: ~4 GB/s to ~6 GB/s one way on
/// the 2-core machine). The kernel caps the request at net.core.wmem_max / rmem_max, so on a machine with
/// the stock 208 KiB limit this changes nothing, and nothing breaks.
/// </summary>
internal static class PipeBuffers
{
    public const int Size = 1 << 20;

    /// <summary>What a write surely fits in when the pipe's capacity is unknown (Windows): a Unix socket's default buffer holds more.</summary>
    public const int AssumedCapacity = 128 * 1024;

    /// <summary>Asks for <see cref="Size"/>-byte buffers on a connected client pipe (the server asks in its constructor).</summary>
    public static void Enlarge(PipeStream pipe)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            using var socket = new Socket(new SafeSocketHandle(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false));
            socket.SendBufferSize = Size;
            socket.ReceiveBufferSize = Size;
        }
        catch (Exception e) when (e is SocketException or NotSupportedException or ObjectDisposedException)
        {
            // Only a matter of speed: the pipe works as it is.
        }
    }

    /// <summary>
    /// How many bytes a write to a connected pipe takes without waiting for the reader: on Linux and macOS half
    /// the socket's send buffer as the kernel reports it (Linux reports twice what it was asked, to cover its
    /// bookkeeping), which is <see cref="Size"/> unless the kernel capped it; elsewhere <see cref="AssumedCapacity"/>.
    /// </summary>
    public static int Capacity(PipeStream pipe)
    {
        if (OperatingSystem.IsWindows())
        {
            return AssumedCapacity;
        }

        try
        {
            using var socket = new Socket(new SafeSocketHandle(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false));
            return Capacity(socket);
        }
        catch (Exception e) when (e is SocketException or NotSupportedException or ObjectDisposedException)
        {
            return AssumedCapacity / 2;
        }
    }

    /// <summary>As <see cref="Capacity(PipeStream)"/>, for a connected Unix socket.</summary>
    public static int Capacity(Socket socket)
    {
        try
        {
            return Math.Max(socket.SendBufferSize / 2, AssumedCapacity / 2);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return AssumedCapacity / 2;
        }
    }
}
