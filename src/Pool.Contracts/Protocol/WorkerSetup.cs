using System.Text;

namespace Pool.Contracts;

/// <summary>
/// What a worker needs to join its pool and that no other process may learn: where to connect, its progress
/// cell, and the pool's secret (<see cref="WorkerHandshake"/>). The host writes it to the worker's standard input
/// and closes it, so it never appears on a command line (which every user can read in /proc/PID/cmdline) nor in the
/// environment (which the worker's own children would inherit, and /proc/PID/environ keeps for the life of the
/// process): once the worker has read it, it is nowhere but in the two processes' memory.
/// A worker on another machine (a Slurm job step) gets it in the environment variable <see cref="EnvironmentVariable"/>
/// instead, which Slurm passes to the step; the worker removes it from its environment before any user code runs.
/// Four lines: the connection's address, the cell's path (<see cref="InBand"/> for none), the secret in hex, and
/// the SHA-256 hash of the host's TLS certificate in hex (<see cref="InBand"/> when the link is local).
/// </summary>
/// <param name="Address">On Linux an abstract Unix socket name starting with '@'; elsewhere a named pipe's name; for a
/// worker on another machine <c>tls:HOST:PORT</c>.</param>
/// <param name="CellPath">The progress cell's file, which the worker maps and deletes; <see cref="InBand"/> for a worker
/// that reports its progress in frames (<see cref="ProgressMessage"/>).</param>
/// <param name="Secret">The pool's secret, <see cref="WorkerHandshake.SecretSize"/> bytes.</param>
/// <param name="CertificateHash">The SHA-256 of the host's certificate, which a worker connecting over TLS pins; null on a local link.</param>
internal sealed record WorkerSetup(string Address, string CellPath, byte[] Secret, byte[]? CertificateHash = null)
{
    /// <summary>A setup longer than this is not one (the worker reads no more).</summary>
    public const int MaxLength = 4096;

    /// <summary>The environment variable that carries the setup to a worker on another machine.</summary>
    public const string EnvironmentVariable = "PROCESSPOOL_WORKER_SETUP";

    /// <summary>The cell path of a worker that reports progress in frames, and the certificate hash of a local link.</summary>
    public const string InBand = "-";

    /// <summary>Whether the worker reports its progress in frames rather than in a shared cell.</summary>
    public bool ProgressInBand => CellPath == InBand;

    /// <summary>Host: the text to write to the worker's standard input (or its environment variable).</summary>
    public string ToText() =>
        $"{Address}\n{CellPath}\n{Convert.ToHexString(Secret)}\n{(CertificateHash is null ? InBand : Convert.ToHexString(CertificateHash))}\n";

    /// <summary>Worker: reads the setup from <paramref name="input"/> (its standard input) up to its end.</summary>
    /// <exception cref="ProtocolException">The input is not a setup written by a pool.</exception>
    public static WorkerSetup Read(Stream input)
    {
        byte[] buffer = new byte[MaxLength];
        int length = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return Parse(Encoding.UTF8.GetString(buffer, 0, length));
    }

    /// <summary>Worker: the setup in <paramref name="text"/> (standard input's, or <see cref="EnvironmentVariable"/>'s).</summary>
    /// <exception cref="ProtocolException">The text is not a setup written by a pool.</exception>
    public static WorkerSetup Parse(string text)
    {
        string[] lines = text.Length > MaxLength ? [] : text.Split('\n');
        if (lines.Length < 4 || lines[0].Length == 0 || lines[1].Length == 0 || lines[2].Length != 2 * WorkerHandshake.SecretSize ||
            (lines[3] != InBand && lines[3].Length != 64))
        {
            throw new ProtocolException("Pool.Worker is started by ProcessPool, which writes its setup to the worker's standard input; this input is not one.");
        }

        try
        {
            return new WorkerSetup(lines[0], lines[1], Convert.FromHexString(lines[2]), lines[3] == InBand ? null : Convert.FromHexString(lines[3]));
        }
        catch (FormatException e)
        {
            throw new ProtocolException("The secret in the worker's setup is not hexadecimal.", e);
        }
    }
}
