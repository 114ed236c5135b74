using System.Globalization;
using System.Text.RegularExpressions;

namespace Pool.Internal;

/// <summary>
/// The fields of <c>scontrol show job -d -o JOB</c> that an allocation needs. The one-line form is
/// <c>Key=Value</c> pairs separated by spaces; the detail (<c>-d</c>) adds one <c>Nodes=... CPU_IDs=...</c> pair per
/// group of nodes with the same CPUs, which is how the CPUs of an allocation are counted per node.
/// </summary>
internal sealed partial record SlurmJobInfo(
    string State, string Reason, string NodeList, int NumTasks, int NumCpus, IReadOnlyList<(string NodeList, int Cpus)> CpusPerNodeGroup)
{
    /// <summary>The job's nodes are allocated and its steps may start.</summary>
    public bool IsRunning => State == "RUNNING";

    /// <summary>Still waiting for its nodes (or being set up on them).</summary>
    public bool IsPending => State is "PENDING" or "CONFIGURING" or "REQUEUED" or "RESIZING";

    /// <summary>Parses one line of <c>scontrol show job -d -o</c>.</summary>
    /// <exception cref="FormatException">It is not such a line.</exception>
    public static SlurmJobInfo Parse(string line)
    {
        string state = Field(line, "JobState") ?? throw new FormatException($"No JobState in scontrol's answer: {line}");
        var groups = new List<(string, int)>();
        foreach (Match match in NodeCpuPattern().Matches(line))
        {
            groups.Add((match.Groups[1].Value, CountIds(match.Groups[2].Value)));
        }

        return new SlurmJobInfo(
            state,
            Field(line, "Reason") ?? "None",
            Field(line, "NodeList") is { } nodes && nodes != "(null)" ? nodes : "",
            Number(line, "NumTasks"),
            Number(line, "NumCPUs"),
            groups);
    }

    /// <summary>How many CPUs the node list <paramref name="nodeGroup"/> has on each of its nodes, from <see cref="CpusPerNodeGroup"/>.</summary>
    public int CpusOf(string nodeGroup) => CpusPerNodeGroup.FirstOrDefault(group => group.NodeList == nodeGroup).Cpus;

    private static string? Field(string line, string key)
    {
        // " Key=" rather than "Key=": "NodeList=" must not match inside "ReqNodeList=" or "ExcNodeList=".
        string prefix = key + "=";
        int start = line.StartsWith(prefix, StringComparison.Ordinal) ? 0
            : line.IndexOf(" " + prefix, StringComparison.Ordinal) is int at and >= 0 ? at + 1
            : -1;
        if (start < 0)
        {
            return null;
        }

        start += prefix.Length;
        int end = line.IndexOf(' ', start);
        return (end < 0 ? line[start..] : line[start..end]).TrimEnd();
    }

    private static int Number(string line, string key)
    {
        // NumTasks is "2", or a range "1-2" while pending: the lower bound is what is sure.
        string? value = Field(line, key);
        if (value is null)
        {
            return 0;
        }

        int dash = value.IndexOf('-', StringComparison.Ordinal);
        return int.TryParse(dash > 0 ? value[..dash] : value, NumberStyles.None, CultureInfo.InvariantCulture, out int number) ? number : 0;
    }

    // "0-1,4,6-7": 5 CPUs.
    private static int CountIds(string ids)
    {
        int count = 0;
        foreach (string part in ids.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = part.IndexOf('-', StringComparison.Ordinal);
            count += dash > 0
                ? int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture) - int.Parse(part[..dash], CultureInfo.InvariantCulture) + 1
                : 1;
        }

        return count;
    }

    [GeneratedRegex(@" Nodes=(\S+) CPU_IDs=(\S+)")]
    private static partial Regex NodeCpuPattern();
}
