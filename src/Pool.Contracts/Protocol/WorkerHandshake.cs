using System.Security.Cryptography;

namespace Pool.Contracts;

/// <summary>
/// Proof, both ways, that the two ends of a new connection belong to the same pool: each side shows it knows the
/// pool's secret (<see cref="SecretSize"/> random bytes the host made and gave only to the workers it started) by
/// an HMAC-SHA256 over fresh nonces of both sides, before any frame with user data is sent. It runs over any
/// <see cref="Stream"/> (a Unix socket here, TCP between machines), so it trusts nothing about the transport.
/// <para>
/// The host (which accepted the connection) speaks first, with a challenge that carries nothing of the pool:
/// <c>magic(8) nonceH(32)</c>. The worker answers <c>nonceW(32) HMAC(secret, "worker" nonceH nonceW)(32)</c>.
/// Only if that proof is right does the host send its own, <c>HMAC(secret, "host" nonceW nonceH)(32)</c>, which
/// the worker checks before it reads anything else. The labels keep one side's proof from serving as the other's;
/// the fresh nonces keep an old exchange from being replayed. It authenticates, it does not encrypt: what follows
/// goes in clear over the transport.
/// </para>
/// </summary>
internal static class WorkerHandshake
{
    /// <summary>The length of a pool's secret.</summary>
    public const int SecretSize = 32;

    private const int NonceSize = 32;
    private const int MacSize = 32;

    private static ReadOnlySpan<byte> Magic => "PPAUTH01"u8;

    private static ReadOnlySpan<byte> WorkerLabel => "worker"u8;

    private static ReadOnlySpan<byte> HostLabel => "host"u8;

    /// <summary>The size of the host's first message.</summary>
    public static int ChallengeSize => Magic.Length + NonceSize;

    /// <summary>A new secret for a pool.</summary>
    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(SecretSize);

    /// <summary>
    /// Host side: challenges the peer and checks its proof. True when the peer knows <paramref name="secret"/>; the
    /// host's own proof has then been sent. False when it does not (a wrong proof, or the stream ended): the peer has
    /// received only a random challenge, and the caller closes the connection.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the peer said nothing in time).</exception>
    public static async Task<bool> AuthenticateWorkerAsync(Stream stream, byte[] secret, CancellationToken cancellationToken)
    {
        byte[] challenge = new byte[ChallengeSize];
        Magic.CopyTo(challenge);
        RandomNumberGenerator.Fill(challenge.AsSpan(Magic.Length));
        await stream.WriteAsync(challenge, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);

        byte[] response = new byte[NonceSize + MacSize];
        int read = await stream.ReadAtLeastAsync(response, response.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read < response.Length)
        {
            return false;
        }

        ReadOnlySpan<byte> hostNonce = challenge.AsSpan(Magic.Length);
        ReadOnlySpan<byte> workerNonce = response.AsSpan(0, NonceSize);
        if (!CryptographicOperations.FixedTimeEquals(response.AsSpan(NonceSize), Mac(secret, WorkerLabel, hostNonce, workerNonce)))
        {
            return false;
        }

        await stream.WriteAsync(Mac(secret, HostLabel, workerNonce, hostNonce), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Worker side, with blocking reads: answers the host's challenge and checks the host's proof.</summary>
    /// <exception cref="ProtocolException">The other end is not the pool that started this worker (or not a pool at all).</exception>
    /// <exception cref="IOException">The stream failed.</exception>
    public static void AuthenticateHost(Stream input, Stream output, ReadOnlySpan<byte> secret)
    {
        Span<byte> challenge = stackalloc byte[ChallengeSize];
        if (!Fill(input, challenge) || !challenge[..Magic.Length].SequenceEqual(Magic))
        {
            throw new ProtocolException("The host did not open the connection with a ProcessPool challenge.");
        }

        Span<byte> response = stackalloc byte[NonceSize + MacSize];
        Span<byte> workerNonce = response[..NonceSize];
        RandomNumberGenerator.Fill(workerNonce);
        ReadOnlySpan<byte> hostNonce = challenge[Magic.Length..];
        Mac(secret, WorkerLabel, hostNonce, workerNonce).CopyTo(response[NonceSize..]);
        output.Write(response);
        output.Flush();

        Span<byte> proof = stackalloc byte[MacSize];
        if (!Fill(input, proof))
        {
            throw new ProtocolException("The host closed the connection instead of proving it knows the pool's secret: this worker's secret is not that pool's.");
        }

        if (!CryptographicOperations.FixedTimeEquals(proof, Mac(secret, HostLabel, workerNonce, hostNonce)))
        {
            throw new ProtocolException("The host's proof of the pool's secret is wrong: the other end is not the pool that started this worker.");
        }
    }

    private static byte[] Mac(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> label, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        Span<byte> message = stackalloc byte[label.Length + first.Length + second.Length];
        label.CopyTo(message);
        first.CopyTo(message[label.Length..]);
        second.CopyTo(message[(label.Length + first.Length)..]);
        return HMACSHA256.HashData(secret, message);
    }

    private static bool Fill(Stream input, Span<byte> destination) =>
        input.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false) == destination.Length;
}
