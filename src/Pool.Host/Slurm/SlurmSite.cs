namespace Pool.Internal;

// Placeholder until the Slurm allocation lands (branch slurm).
internal sealed class SlurmSite
{
    public static Task<WorkerSite> StartAsync(SlurmLauncher launcher, TimeSpan timeout, Microsoft.Extensions.Logging.ILogger? logger, CancellationToken cancellationToken) =>
        throw new NotImplementedException();
}
