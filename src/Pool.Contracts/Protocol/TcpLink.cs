using System.Net.Sockets;

namespace Pool.Contracts;

/// <summary>
/// The socket settings of a link between machines (a worker on a Slurm node and its host), set on both ends. The
/// kernel's keepalive probes an idle link every second and gives up after three unanswered probes; TCP_USER_TIMEOUT
/// bounds how long sent data may stay unacknowledged. Either way a peer whose machine or network is gone shows as a
/// failed read or write within about <see cref="DeadPeerTimeout"/>, so a worker whose host vanished exits, with no
/// application-level heartbeat from the host (the host learns of silent workers from their own progress frames).
/// </summary>
internal static class TcpLink
{
    /// <summary>How long a silent peer's machine or network may be gone before the link fails.</summary>
    public static readonly TimeSpan DeadPeerTimeout = TimeSpan.FromSeconds(5);

    private const int IpProtoTcp = 6;
    private const int TcpUserTimeout = 18;

    public static void Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = PipeBuffers.Size;
        socket.ReceiveBufferSize = PipeBuffers.Size;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 1);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 1);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
            if (OperatingSystem.IsLinux())
            {
                socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes((int)DeadPeerTimeout.TotalMilliseconds));
            }
        }
        catch (SocketException)
        {
            // A platform without these options: the link still works, and fails later on a dead peer.
        }
    }
}
