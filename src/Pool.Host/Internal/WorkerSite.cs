using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Where a pool's workers run and how they reach it, the one place where local and remote workers differ:
/// which process is started for a worker (the worker itself, or the <c>srun</c> that runs it on a node), where it
/// connects (an abstract Unix socket checked by peer pid, or TCP with TLS), how it gets its setup (standard input, or
/// the environment Slurm passes), and whether its progress is a shared cell or frames (<see cref="ProgressMessage"/>).
/// Everything after the connection (protocol, chunking, blame, timeouts, replacement) is the same for both.
/// </summary>
internal abstract class WorkerSite : IAsyncDisposable
{
    /// <summary>Whether workers report progress in frames, and go silent when their machine or network is lost.</summary>
    public abstract bool ProgressInBand { get; }

    /// <summary>How many workers the pool runs when <see cref="ProcessPoolOptions.Workers"/> is null.</summary>
    public virtual int? DefaultWorkerCount => null;

    /// <summary>The SHA-256 of the certificate workers pin; null for a local link.</summary>
    public virtual byte[]? CertificateHash => null;

    public static async Task<WorkerSite> CreateAsync(ProcessPoolOptions options, ILogger? logger, CancellationToken cancellationToken) => options.Launcher switch
    {
        null => LocalSite.Instance,
        SlurmLauncher slurm => await SlurmSite.StartAsync(slurm, options.StartTimeout, logger, cancellationToken).ConfigureAwait(false),
        LoopbackTlsLauncher => new LoopbackTlsSite(),
        _ => throw new ArgumentException($"Unknown launcher {options.Launcher.GetType().Name}.", nameof(options)),
    };

    /// <summary>A new listener for one worker, listening before it starts.</summary>
    public abstract WorkerListener CreateListener();

    /// <summary>Chooses where the next worker runs: a node's name, or null on this machine.</summary>
    public virtual string? Place() => null;

    /// <summary>A worker on <paramref name="node"/> went silent (<see cref="WorkerSilence"/>): the node is taken as lost, and gets no more workers.</summary>
    public virtual void OnNodeLost(string node)
    {
    }

    /// <summary>A worker placed on <paramref name="node"/> is gone.</summary>
    public virtual void Release(string? node)
    {
    }

    /// <summary>
    /// The process to start for a worker placed on <paramref name="node"/>, with <paramref name="setup"/> in its
    /// environment, or on its standard input when <paramref name="setupOnStandardInput"/> comes back true (the caller writes it).
    /// </summary>
    public abstract ProcessStartInfo CreateStartInfo(WorkerLaunch launch, string? node, WorkerSetup setup, IReadOnlyDictionary<string, string?> environment, out bool setupOnStandardInput);

    /// <summary>The environment's thread limits for <paramref name="workers"/> workers (see <see cref="WorkerLaunch.WithThreadLimits"/>).</summary>
    public virtual IReadOnlyDictionary<string, string?> WithThreadLimits(IReadOnlyDictionary<string, string?> environment, int workers) =>
        WorkerLaunch.WithThreadLimits(environment, workers);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Workers as child processes of this one, each on an abstract Unix socket (a named pipe elsewhere), with a shared progress cell.</summary>
internal sealed class LocalSite : WorkerSite
{
    public static readonly LocalSite Instance = new();

    public override bool ProgressInBand => false;

    public override WorkerListener CreateListener() => WorkerListener.Create();

    public override ProcessStartInfo CreateStartInfo(WorkerLaunch launch, string? node, WorkerSetup setup, IReadOnlyDictionary<string, string?> environment, out bool setupOnStandardInput)
    {
        setupOnStandardInput = true;
        return launch.CreateStartInfo(environment);
    }
}

/// <summary>
/// Tests: workers as child processes of this one, but linked as workers on other machines are (TCP and TLS on the
/// loopback address, progress in frames, setup in the environment), so that the remote link is tested on any machine.
/// </summary>
internal sealed class LoopbackTlsSite : WorkerSite
{
    private readonly PoolCertificate _certificate = PoolCertificate.Create();

    public override bool ProgressInBand => true;

    public override byte[]? CertificateHash => _certificate.Hash;

    public override WorkerListener CreateListener() => new TlsListener(IPAddress.Loopback, _certificate);

    public override ProcessStartInfo CreateStartInfo(WorkerLaunch launch, string? node, WorkerSetup setup, IReadOnlyDictionary<string, string?> environment, out bool setupOnStandardInput)
    {
        setupOnStandardInput = false;
        ProcessStartInfo info = launch.CreateStartInfo(environment, remote: true);
        info.Environment[WorkerSetup.EnvironmentVariable] = setup.ToText();
        return info;
    }

    public override async ValueTask DisposeAsync()
    {
        _certificate.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Tests: the launcher of <see cref="LoopbackTlsSite"/>.</summary>
internal sealed record LoopbackTlsLauncher : WorkerLauncher;
