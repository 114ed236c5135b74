using System.Globalization;
using System.Text;
using CliWrap;
using CliWrap.Buffered;

namespace Pool.Internal;

/// <summary>
/// One Slurm client command that runs to completion (<c>sbatch</c>, <c>squeue</c>, <c>scontrol</c>, <c>scancel</c>,
/// <c>sinfo</c>, a short <c>srun</c>): buffered output, a time bound, and the exit code left to the caller, who knows
/// which failures are expected (<c>squeue</c> on a purged job) and which are not. The commands inherit this process's
/// environment, <c>SLURM_CONF</c> included.
/// </summary>
internal static class SlurmCommand
{
    /// <summary>
    /// How long a client command may take. slurmctld answers in milliseconds; a command that takes longer than this
    /// talks to a controller that is down or unreachable, and its own retries (MessageTimeout, 10 s by default, times
    /// a few attempts) would otherwise hold start-up for minutes.
    /// </summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Runs <paramref name="program"/> and returns its result whatever its exit code.</summary>
    /// <exception cref="WorkerStartException">It could not be started (not installed) or did not end within <paramref name="timeout"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<SlurmCommandResult> RunAsync(
        string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        TimeSpan bound = timeout ?? DefaultTimeout;
        using var timed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timed.CancelAfter(bound);
        try
        {
            BufferedCommandResult result = await Cli.Wrap(program)
                .WithArguments(arguments)
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(Encoding.UTF8, timed.Token)
                .ConfigureAwait(false);
            return new SlurmCommandResult(program, arguments, result.ExitCode, result.StandardOutput, result.StandardError);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new WorkerStartException(
                $"{Describe(program, arguments)} did not finish within {bound.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s: is slurmctld up and SLURM_CONF right?");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception || e.InnerException is System.ComponentModel.Win32Exception)
        {
            // CliWrap reports a program it cannot start as InvalidOperationException around the Win32Exception.
            throw new WorkerStartException($"Could not run {program}: is Slurm's client (slurm-client) installed and on PATH? {e.Message}", e);
        }
    }

    /// <summary>Runs <paramref name="program"/> and returns its standard output; a non-zero exit code throws with Slurm's stderr.</summary>
    /// <exception cref="WorkerStartException">It failed; the message holds what Slurm printed.</exception>
    public static async Task<string> RunCheckedAsync(
        string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        SlurmCommandResult result = await RunAsync(program, arguments, cancellationToken, timeout).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.StandardOutput : throw new WorkerStartException(result.Describe());
    }

    /// <summary>The command line as a user would type it, for messages.</summary>
    public static string Describe(string program, IReadOnlyList<string> arguments) =>
        arguments.Count == 0 ? program : program + " " + string.Join(' ', arguments.Select(Quote));

    private static string Quote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '=' or '.' or '/' or ',' or ':' or '[' or ']')
            ? argument
            : "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>What a Slurm command printed and how it ended.</summary>
internal sealed record SlurmCommandResult(string Program, IReadOnlyList<string> Arguments, int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Slurm's own words first: its stderr says what is wrong ("invalid partition specified: nope").</summary>
    public string Describe()
    {
        string said = StandardError.Trim();
        if (said.Length == 0)
        {
            said = StandardOutput.Trim();
        }

        return $"{SlurmCommand.Describe(Program, Arguments)} failed with exit code {ExitCode}" + (said.Length == 0 ? "" : ": " + said.ReplaceLineEndings("; "));
    }
}
