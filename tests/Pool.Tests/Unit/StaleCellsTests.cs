using System.Diagnostics;
using Pool.Contracts;
using Pool.Internal;

namespace Pool.Tests.Unit;

/// <summary>A cell left by a host killed while its worker was starting is removed by a later pool; a live host's is not.</summary>
public class StaleCellsTests
{
    [Fact(Timeout = 30_000)]
    public async Task The_cells_of_dead_hosts_are_removed_and_those_of_live_ones_kept()
    {
        using Process gone = Process.Start(new ProcessStartInfo("true"))!;
        await gone.WaitForExitAsync();
        string dead = Path.Combine(ProgressCell.Directory, ProgressCell.FilePrefix(gone.Id) + Guid.NewGuid().ToString("N") + ".cell");
        string live = Path.Combine(ProgressCell.Directory, ProgressCell.FilePrefix(Environment.ProcessId) + Guid.NewGuid().ToString("N") + ".cell");
        await File.WriteAllBytesAsync(dead, []);
        await File.WriteAllBytesAsync(live, []);
        try
        {
            StaleCells.Sweep();

            File.Exists(dead).Should().BeFalse("its host is gone");
            File.Exists(live).Should().BeTrue("its host is alive");
        }
        finally
        {
            File.Delete(dead);
            File.Delete(live);
        }
    }
}
