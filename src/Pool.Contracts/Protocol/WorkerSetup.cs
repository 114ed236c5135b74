using System.Text;

namespace Pool.Contracts;

/// <summary>
/// What a worker needs to join its pool and that no other process may learn: where to connect, its progress
/// cell, and the pool's secret (<see cref="WorkerHandshake"/>). The host writes it to the worker's standard input
/// and closes it, so it never appears on a command line (which every user can read in /proc/PID/cmdline) nor in the
/// environment (which the worker's own children would inherit, and /proc/PID/environ keeps for the life of the
/// process): once the worker has read it, it is nowhere but in the two processes' memory.
/// Three lines: the connection's address, the cell's path, the secret in hex.
/// </summary>
/// <param name="Address">On Linux an abstract Unix socket name starting with '@'; elsewhere a named pipe's name.</param>
/// <param name="CellPath">The progress cell's file, which the worker maps and deletes.</param>
/// <param name="Secret">The pool's secret, <see cref="WorkerHandshake.SecretSize"/> bytes.</param>
internal sealed record WorkerSetup(string Address, string CellPath, byte[] Secret)
{
    /// <summary>A setup longer than this is not one (the worker reads no more).</summary>
    public const int MaxLength = 4096;

    /// <summary>Host: the text to write to the worker's standard input.</summary>
    public string ToText() => $"{Address}\n{CellPath}\n{Convert.ToHexString(Secret)}\n";

    /// <summary>Worker: reads the setup from <paramref name="input"/> (its standard input) up to its end.</summary>
    /// <exception cref="ProtocolException">The input is not a setup written by a pool.</exception>
    public static WorkerSetup Read(Stream input)
    {
        byte[] buffer = new byte[MaxLength];
        int length = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        string[] lines = Encoding.UTF8.GetString(buffer, 0, length).Split('\n');
        if (lines.Length < 3 || lines[0].Length == 0 || lines[1].Length == 0 || lines[2].Length != 2 * WorkerHandshake.SecretSize)
        {
            throw new ProtocolException("Pool.Worker is started by ProcessPool, which writes its setup to the worker's standard input; this input is not one.");
        }

        try
        {
            return new WorkerSetup(lines[0], lines[1], Convert.FromHexString(lines[2]));
        }
        catch (FormatException e)
        {
            throw new ProtocolException("The secret in the worker's setup is not hexadecimal.", e);
        }
    }
}
