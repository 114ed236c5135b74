using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// A worker's link to a host on another machine: TCP (<see cref="TcpLink"/> settings) and TLS, where the host's
/// certificate is trusted only if its SHA-256 is the one in the worker's setup. The certificate is the pool's own,
/// made when the pool started and never written anywhere, so no certificate authority is involved and nobody else
/// can stand in for the host; the pool's handshake (<see cref="WorkerHandshake"/>) then runs inside the TLS session.
/// </summary>
internal static class TlsClient
{
    /// <summary>The name the worker asks for; the pinned hash, not the name, is what is checked.</summary>
    public const string TargetHost = "processpool";

    /// <param name="address"><c>tls:HOST:PORT</c>.</param>
    /// <param name="certificateHash">The SHA-256 of the host's certificate.</param>
    /// <param name="timeout">How long the connection and the TLS handshake may take.</param>
    /// <exception cref="IOException">The address is not one, the connection failed, or the TLS handshake failed (the other end is not the pool's host).</exception>
    /// <exception cref="TimeoutException">Nothing answered within <paramref name="timeout"/>.</exception>
    public static (Stream Input, Stream Output) Connect(string address, byte[] certificateHash, TimeSpan timeout)
    {
        int colon = address.LastIndexOf(':');
        if (!address.StartsWith("tls:", StringComparison.Ordinal) || colon <= 4 || !int.TryParse(address.AsSpan(colon + 1), out int port))
        {
            throw new IOException($"'{address}' is not a host's address (tls:HOST:PORT).");
        }

        string host = address[4..colon];
        using var deadline = new CancellationTokenSource(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            TcpLink.Configure(socket);
            socket.ConnectAsync(host, port, deadline.Token).AsTask().GetAwaiter().GetResult();
            var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = TargetHost,
                    EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
                    RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                        certificate is not null && CryptographicOperations.FixedTimeEquals(certificate.GetCertHash(HashAlgorithmName.SHA256), certificateHash),
                },
                deadline.Token).GetAwaiter().GetResult();
            return (tls, tls);
        }
        catch (OperationCanceledException)
        {
            socket.Dispose();
            throw new TimeoutException();
        }
        catch (Exception e) when (e is SocketException or AuthenticationException)
        {
            // As IOException, so that the worker's Main names no networking type: a local worker never loads them.
            socket.Dispose();
            throw new IOException(e is AuthenticationException ? $"the host's TLS certificate is not the pool's ({e.Message})" : e.Message, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
