using System.Globalization;
using System.Text.RegularExpressions;

namespace Pool.Internal;

/// <summary>
/// How a worker's job step ended, read from its <c>srun</c>: the exit code and the end of srun's stderr, where srun
/// writes its own lines between the worker's. Measured on Slurm 22.05 (eng/slurm cluster), one task per step:
/// <list type="table">
/// <item><term>task exits with 3</term><description>srun exits 3; "srun: error: ppnode1: task 0: Exited with exit code 3"</description></item>
/// <item><term>task gets SIGKILL</term><description>137; "srun: error: ppnode1: task 0: Killed"</description></item>
/// <item><term>task gets SIGSEGV</term><description>139; "srun: error: ppnode1: task 0: Segmentation fault"</description></item>
/// <item><term>SIGTERM, SIGABRT</term><description>143 "Terminated", 134 "Aborted" (strsignal's words)</description></item>
/// <item><term>task exits with 139</term><description>139; "... task 0: Exited with exit code 139": only the line tells it from SIGSEGV</description></item>
/// <item><term>step cancelled (scancel J.S)</term><description>137; "slurmstepd-ppnode1: error: *** STEP 1.44 ON ppnode1 CANCELLED AT ... ***", then "task 0: Killed"</description></item>
/// <item><term>node lost</term><description>0 (!); "srun: error: Node failure on ppnode2" (FACTS.md): the exit code says nothing</description></item>
/// </list>
/// So srun's exit code already follows the shell's 128 + N for a signal, and the task line adds the node's name.
/// </summary>
internal static partial class SlurmStepExit
{
    // strsignal(3) texts, as srun prints them, to signal numbers (Linux x86-64 and arm64 numbering).
    private static readonly Dictionary<string, int> SignalTexts = new(StringComparer.Ordinal)
    {
        ["Hangup"] = 1, ["Interrupt"] = 2, ["Quit"] = 3, ["Illegal instruction"] = 4, ["Trace/breakpoint trap"] = 5,
        ["Aborted"] = 6, ["Bus error"] = 7, ["Floating point exception"] = 8, ["Killed"] = 9, ["User defined signal 1"] = 10,
        ["Segmentation fault"] = 11, ["User defined signal 2"] = 12, ["Broken pipe"] = 13, ["Alarm clock"] = 14, ["Terminated"] = 15,
    };

    /// <summary>
    /// The worker's exit: from srun's "task 0: ..." line when there is one (it tells an exit code of 139 from SIGSEGV),
    /// else from srun's exit code. Null when the step did not end by its task's exit but because its node failed
    /// (<see cref="FindNodeFailure"/>): srun then exits 0, which must not read as a clean exit.
    /// </summary>
    public static WorkerExit? ParseStepExit(int srunExitCode, IReadOnlyList<string> stderrTail)
    {
        ArgumentNullException.ThrowIfNull(stderrTail);
        for (int i = stderrTail.Count - 1; i >= 0; i--)
        {
            if (TaskLine().Match(stderrTail[i]) is { Success: true } match)
            {
                string what = match.Groups["what"].Value;
                if (match.Groups["code"].Success)
                {
                    return new WorkerExit(int.Parse(match.Groups["code"].Value, CultureInfo.InvariantCulture));
                }

                if (SignalTexts.TryGetValue(what, out int signal))
                {
                    return new WorkerExit(128 + signal);
                }
            }
        }

        return FindNodeFailure(stderrTail) is not null ? null : new WorkerExit(srunExitCode);
    }

    /// <summary>The node named by srun's "Node failure on NODE" line, if the step ended that way.</summary>
    public static string? FindNodeFailure(IReadOnlyList<string> stderrTail)
    {
        ArgumentNullException.ThrowIfNull(stderrTail);
        foreach (string line in stderrTail)
        {
            if (NodeFailureLine().Match(line) is { Success: true } match)
            {
                return match.Groups["node"].Value;
            }
        }

        return null;
    }

    /// <summary>
    /// Why Slurm ended the step, from slurmstepd's "*** STEP 1.4 ON ppnode1 CANCELLED AT ... DUE TO TIME LIMIT ***"
    /// (or "*** JOB 1 ... ***" when the whole allocation ended): "CANCELLED DUE TO TIME LIMIT", or null.
    /// </summary>
    public static string? FindCancellation(IReadOnlyList<string> stderrTail)
    {
        ArgumentNullException.ThrowIfNull(stderrTail);
        foreach (string line in stderrTail)
        {
            if (CancelledLine().Match(line) is { Success: true } match)
            {
                return match.Groups["due"].Success ? $"the {match.Groups["kind"].Value.ToLowerInvariant()} was cancelled due to {match.Groups["due"].Value.ToLowerInvariant()}"
                    : $"the {match.Groups["kind"].Value.ToLowerInvariant()} was cancelled";
            }
        }

        return null;
    }

    /// <summary>Whether a line of srun's stderr is Slurm's own (srun's or slurmstepd's) rather than the worker's.</summary>
    public static bool IsSlurmLine(string line) =>
        line.StartsWith("srun: ", StringComparison.Ordinal) || line.StartsWith("slurmstepd", StringComparison.Ordinal);

    [GeneratedRegex(@"^srun: error: (?<node>\S+): task \d+: (?:Exited with exit code (?<code>\d+)|(?<what>[^(]+?))(?: \(core dumped\))?\s*$")]
    private static partial Regex TaskLine();

    [GeneratedRegex(@"^srun: error: Node failure on (?<node>\S+)")]
    private static partial Regex NodeFailureLine();

    [GeneratedRegex(@"\*\*\* (?<kind>STEP|JOB) \S+ ON \S+ CANCELLED AT \S+(?: DUE TO (?<due>[A-Z ]+?))? \*\*\*")]
    private static partial Regex CancelledLine();
}
