using System.IO.Pipes;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Where one worker connects, and the check that what connects is that worker. On Linux the listener is a Unix
/// socket in the abstract namespace: it has no file, so nothing is left behind however the host ends, and no file
/// mode or umask matters. Any process may try to connect to it, so every connection is checked: first that the
/// kernel's SO_PEERCRED says the peer is the process the pool started (before a byte is sent to it), then the
/// <see cref="WorkerHandshake"/> proof of the pool's secret. Elsewhere it is a named pipe that only this user can
/// open (<see cref="System.IO.Pipes.PipeOptions.CurrentUserOnly"/>), with the same handshake. A connection that
/// fails either check is closed, logged, and forgotten: the listener goes on waiting for the worker.
/// </summary>
internal abstract class WorkerListener : IDisposable
{
    // A peer that connected with the right credentials has this long to answer the challenge.
    private protected static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Tests: called with a new listener's address and the worker's cell path before the worker is started, and
    /// awaited (a rogue connects first). Flows with the pool's start, so a test sets it only for its own pools.
    /// </summary>
    internal static readonly AsyncLocal<Func<string, string, Task>?> BeforeWorkerStarts = new();

    /// <summary>What the worker connects to (<see cref="WorkerSetup.Address"/>).</summary>
    public abstract string Address { get; }

    /// <summary>A new listener, listening before the worker starts.</summary>
    public static WorkerListener Create() => OperatingSystem.IsLinux() ? new AbstractSocketListener() : new NamedPipeListener();

    /// <summary>
    /// Accepts connections until one comes from the worker the pool started (process <paramref name="processId"/>,
    /// where the peer's pid can be known) and proves it knows <paramref name="secret"/>; every other one is closed and
    /// reported to <paramref name="stray"/>.
    /// </summary>
    /// <returns>The worker's stream and how many bytes a write to it takes without waiting.</returns>
    public abstract Task<(Stream Stream, int Capacity)> AcceptAsync(int processId, byte[] secret, Action<StrayConnection> stray, CancellationToken cancellationToken);

    public abstract void Dispose();

    /// <summary>
    /// A listener on this machine, where one connection is checked at a time: the peer's pid is known at once (Linux),
    /// so a stranger is refused before the handshake, or only this user can connect at all (a named pipe).
    /// </summary>
    private abstract class LocalListener : WorkerListener
    {
        public override async Task<(Stream Stream, int Capacity)> AcceptAsync(int processId, byte[] secret, Action<StrayConnection> stray, CancellationToken cancellationToken)
        {
            while (true)
            {
                (Stream stream, int? peerPid, int? peerUid) = await AcceptOneAsync(cancellationToken).ConfigureAwait(false);
                string? refusal = peerPid is { } pid && pid != processId
                    ? $"it is pid {pid}, not the worker the pool started (pid {processId})"
                    : null;
                if (refusal is null)
                {
                    using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    handshake.CancelAfter(HandshakeTimeout);
                    try
                    {
                        if (await WorkerHandshake.AuthenticateWorkerAsync(stream, secret, handshake.Token).ConfigureAwait(false))
                        {
                            StopListening();
                            int capacity = CapacityOf(stream);
                            return (Connected(stream), capacity);
                        }

                        refusal = "it did not prove it knows the pool's secret";
                    }
                    catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                    {
                        refusal = $"it did not answer the pool's challenge within {HandshakeTimeout.TotalSeconds:0} s";
                    }
                    catch (IOException e)
                    {
                        refusal = $"its connection failed during the handshake ({e.Message})";
                    }
                }

                Release(stream);
                // The start was given up (the pool stopping) while the worker answered: it was killed mid-handshake, and
                // the truncated answer is no stranger's.
                cancellationToken.ThrowIfCancellationRequested();
                stray(new StrayConnection(peerPid, peerUid, refusal));
            }
        }

        protected abstract Task<(Stream Stream, int? Pid, int? Uid)> AcceptOneAsync(CancellationToken cancellationToken);

        /// <summary>Closes a connection that was refused, so that the next one can be accepted.</summary>
        protected abstract void Release(Stream stream);

        /// <summary>The worker is connected: nobody else may connect now.</summary>
        protected abstract void StopListening();

        protected abstract int CapacityOf(Stream stream);

        /// <summary>The stream the frames run over once the handshake is done.</summary>
        protected virtual Stream Connected(Stream stream) => stream;
    }

    /// <summary>Linux: an abstract Unix socket, named by 128 random bits.</summary>
    private sealed class AbstractSocketListener : LocalListener
    {
        private const int SolSocket = 1;
        private const int SoPeercred = 17;

        private readonly Socket _listener;
        private Socket? _accepted;

        public AbstractSocketListener()
        {
            // The host's pid in the name says whose it is (in /proc/net/unix, ss -x); the 128 random bits make it unguessable in advance.
            string name = "pp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N");
            Address = "@" + name;
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                _listener.Bind(new UnixDomainSocketEndPoint("\0" + name));
                _listener.Listen(8);
            }
            catch
            {
                _listener.Dispose();
                throw;
            }
        }

        public override string Address { get; }

        public override void Dispose() => _listener.Dispose();

        protected override async Task<(Stream Stream, int? Pid, int? Uid)> AcceptOneAsync(CancellationToken cancellationToken)
        {
            Socket socket = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            // struct ucred { pid_t pid; uid_t uid; gid_t gid; }, as the kernel recorded it at connect().
            Span<byte> credentials = stackalloc byte[12];
            int? pid = null;
            int? uid = null;
            if (socket.GetRawSocketOption(SolSocket, SoPeercred, credentials) == credentials.Length)
            {
                pid = BitConverter.ToInt32(credentials);
                uid = BitConverter.ToInt32(credentials[4..]);
            }

            socket.SendBufferSize = PipeBuffers.Size;
            socket.ReceiveBufferSize = PipeBuffers.Size;
            // Blocking from the start (see BlockingSocketStream): the handshake's reads wait at most this long.
            socket.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
            socket.SendTimeout = (int)HandshakeTimeout.TotalMilliseconds;
            _accepted = socket;
            // A peer whose pid cannot be read is refused like one with the wrong pid.
            return (new BlockingSocketStream(socket), pid ?? -1, uid);
        }

        protected override void Release(Stream stream) => stream.Dispose();

        protected override void StopListening() => _listener.Dispose();

        protected override int CapacityOf(Stream stream) => _accepted is { } socket ? PipeBuffers.Capacity(socket) : PipeBuffers.AssumedCapacity / 2;

        /// <summary>The frames wait as long as it takes (a task may run for hours).</summary>
        protected override Stream Connected(Stream stream)
        {
            if (_accepted is { } socket)
            {
                socket.ReceiveTimeout = 0;
                socket.SendTimeout = 0;
            }

            return stream;
        }
    }

    /// <summary>Elsewhere: a named pipe only this user can open.</summary>
    private sealed class NamedPipeListener : LocalListener
    {
        private readonly NamedPipeServerStream _pipe;

        public NamedPipeListener()
        {
            Address = "pp" + Guid.NewGuid().ToString("N");
            _pipe = new NamedPipeServerStream(
                Address, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, System.IO.Pipes.PipeOptions.Asynchronous | System.IO.Pipes.PipeOptions.CurrentUserOnly,
                PipeBuffers.Size, PipeBuffers.Size);
        }

        public override string Address { get; }

        public override void Dispose() => _pipe.Dispose();

        protected override async Task<(Stream Stream, int? Pid, int? Uid)> AcceptOneAsync(CancellationToken cancellationToken)
        {
            await _pipe.WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            return (_pipe, null, null);
        }

        protected override void Release(Stream stream) => _pipe.Disconnect();

        protected override void StopListening()
        {
            // One instance: once connected, nobody else can connect.
        }

        protected override int CapacityOf(Stream stream) => PipeBuffers.Capacity(_pipe);
    }
}

/// <summary>
/// Where a worker on another machine connects: a TCP port on <see cref="SlurmLauncher.HostAddress"/>, where every
/// connection first gets a TLS session with the pool's certificate (<see cref="PoolCertificate"/>, which the worker
/// pins) and then the pool's handshake inside it. There is no peer pid to check across machines: the secret is the
/// proof. The port closes once its worker is connected.
/// </summary>
internal sealed class TlsListener : WorkerListener
{
    private readonly Socket _listener;
    private readonly PoolCertificate _certificate;

    public TlsListener(System.Net.IPAddress address, PoolCertificate certificate)
    {
        _certificate = certificate;
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new System.Net.IPEndPoint(address, 0));
            _listener.Listen(8);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        var bound = (System.Net.IPEndPoint)_listener.LocalEndPoint!;
        Address = $"tls:{(address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString())}:{bound.Port}";
    }

    public override string Address { get; }

    public override void Dispose() => _listener.Dispose();

    /// <summary>
    /// As the base's, but every connection is checked at once, side by side: anyone on the network can connect to the
    /// port, and a peer that connects and then says nothing must not hold up the worker behind it for the handshake's
    /// 10 s (several such peers would outlast the start timeout).
    /// </summary>
    public override async Task<(Stream Stream, int Capacity)> AcceptAsync(int processId, byte[] secret, Action<StrayConnection> stray, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var won = new TaskCompletionSource<(Stream Stream, int Capacity)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var checks = new List<Task>();
        Task<Socket>? accept = null;
        try
        {
            while (true)
            {
                accept = _listener.AcceptAsync(stop.Token).AsTask();
                if (await Task.WhenAny(accept, won.Task).ConfigureAwait(false) == won.Task)
                {
                    return await won.Task.ConfigureAwait(false);
                }

                Socket socket = await accept.ConfigureAwait(false);
                checks.Add(CheckAsync(socket, secret, stray, won, stop.Token));
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            StopListening();
            if (accept is not null)
            {
                await ((Task)accept).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await Task.WhenAll(checks).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>One connection: TLS, then the pool's handshake, within <see cref="WorkerListener.HandshakeTimeout"/>; the first that passes wins.</summary>
    private async Task CheckAsync(Socket socket, byte[] secret, Action<StrayConnection> stray, TaskCompletionSource<(Stream, int)> won, CancellationToken cancellationToken)
    {
        string peer = socket.RemoteEndPoint?.ToString() ?? "an unknown address";
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        string refusal;
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        handshake.CancelAfter(HandshakeTimeout);
        try
        {
            TcpLink.Configure(socket);
            stream = await SecureAsync(stream, handshake.Token).ConfigureAwait(false);
            if (await WorkerHandshake.AuthenticateWorkerAsync(stream, secret, handshake.Token).ConfigureAwait(false))
            {
                if (won.TrySetResult((stream, PipeBuffers.Capacity(socket))))
                {
                    return;
                }

                refusal = "the worker had connected already";
            }
            else
            {
                refusal = "it did not prove it knows the pool's secret";
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            refusal = $"it did not complete TLS and answer the pool's challenge within {HandshakeTimeout.TotalSeconds:0} s";
        }
        catch (OperationCanceledException)
        {
            // The worker connected, or the start was given up: this one is simply closed.
            await stream.DisposeAsync().ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException)
        {
            refusal = $"its TLS session or handshake failed ({e.Message})";
        }
        catch (Exception e)
        {
            // Anything else a stranger's bytes provoke is still a refusal, closed and logged like the others.
            refusal = $"checking it failed with {e.GetType().Name}: {e.Message}";
        }

        await stream.DisposeAsync().ConfigureAwait(false);
        stray(new StrayConnection(null, null, refusal, peer));
    }

    /// <summary>A TLS session on the connection, with the pool's certificate.</summary>
    private async Task<Stream> SecureAsync(Stream stream, CancellationToken cancellationToken)
    {
        var tls = new System.Net.Security.SslStream(stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsServerAsync(
            new System.Net.Security.SslServerAuthenticationOptions
            {
                ServerCertificate = _certificate.Certificate,
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13 | System.Security.Authentication.SslProtocols.Tls12,
                ClientCertificateRequired = false,
            },
            cancellationToken).ConfigureAwait(false);
        return tls;
    }

    private void StopListening() => _listener.Dispose();
}

/// <summary>A connection to a worker's listener that was not that worker, and why it was refused; <paramref name="Peer"/> is a network peer's address.</summary>
internal readonly record struct StrayConnection(int? ProcessId, int? UserId, string Reason, string? Peer = null)
{
    public void Log(ILogger? logger, int workerId)
    {
        if (Peer is { } peer)
        {
            if (logger is not null)
            {
                Internal.Log.StrayNetworkConnection(logger, workerId, peer, Reason);
            }
            else
            {
                Console.Error.WriteLine($"ProcessPool: refused a connection to worker {workerId}'s port from {peer}: {Reason}. It received at most the TLS handshake and a random challenge.");
            }

            return;
        }

        string pid = ProcessId is { } p and >= 0 ? p.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unknown";
        string uid = UserId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown";
        if (logger is not null)
        {
            Internal.Log.StrayConnection(logger, workerId, pid, uid, Reason);
        }
        else
        {
            Console.Error.WriteLine($"ProcessPool: refused a connection to worker {workerId}'s pipe from pid {pid} (uid {uid}): {Reason}. It received nothing of the pool.");
        }
    }
}
