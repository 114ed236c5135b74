namespace Pool.Tests.Slurm;

/// <summary>
/// A test against the local Slurm cluster of eng/slurm. Without one (SLURM_CONF unset, or <c>sinfo</c> failing) it is
/// skipped with the reason on a developer's machine; in CI (<c>CI=true</c>) it runs anyway and fails, saying why
/// (<see cref="SlurmCluster.Current"/>), so that CI cannot skip the Slurm tests without anyone noticing. Test classes
/// carry <c>[Trait("Category", "Slurm")]</c>: <c>dotnet test --filter Category=Slurm</c> runs them.
/// </summary>
public sealed class SlurmFactAttribute : FactAttribute
{
    public SlurmFactAttribute()
    {
        if (SlurmCluster.Unavailable is { } reason && !SlurmCluster.InCi)
        {
            Skip = reason;
        }
    }
}
