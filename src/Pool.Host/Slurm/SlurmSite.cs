using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>
/// Workers on the nodes of a Slurm allocation (<see cref="SlurmAllocation"/>): each is a job step started with
/// <c>srun</c> from this process, which relays its output and ends when it does; it connects back over TCP with TLS
/// (<see cref="TlsListener"/>, the pool's own <see cref="PoolCertificate"/>), gets its setup in the environment Slurm
/// passes to the step, and reports its progress in frames. Before the first worker starts, the worker's files are
/// checked on every node, so that a node that cannot see the build fails the pool's start by name.
/// </summary>
internal sealed class SlurmSite : WorkerSite
{
    private readonly SlurmAllocation _allocation;
    private readonly SlurmLauncher _launcher;
    private readonly IPAddress _address;
    private readonly PoolCertificate _certificate = PoolCertificate.Create();

    private SlurmSite(SlurmAllocation allocation, SlurmLauncher launcher, IPAddress address)
    {
        _allocation = allocation;
        _launcher = launcher;
        _address = address;
    }

    public override bool ProgressInBand => true;

    public override int? DefaultWorkerCount => _allocation.Slots;

    public override byte[]? CertificateHash => _certificate.Hash;

    /// <summary>The allocation's job id (tests, logs).</summary>
    public string JobId => _allocation.JobId;

    /// <exception cref="WorkerStartException">Slurm gave no allocation in time, or a node cannot see the worker's files.</exception>
    public static async Task<WorkerSite> StartAsync(SlurmLauncher launcher, TimeSpan timeout, ILogger? logger, CancellationToken cancellationToken)
    {
        SlurmAllocation allocation = await SlurmAllocation.AcquireAsync(launcher, timeout, logger, cancellationToken).ConfigureAwait(false);
        try
        {
            string host = allocation.ResolveHostAddress(launcher);
            if (!IPAddress.TryParse(host, out IPAddress? address))
            {
                throw new WorkerStartException($"The pool cannot listen on '{host}' for its workers on the Slurm nodes: set SlurmLauncher.HostAddress to an IP address of this machine that the nodes reach.");
            }

            WorkerLaunch launch = WorkerLaunch.Current;
            await allocation.CheckPathsAsync([launch.Dotnet, launch.WorkerAssembly, launch.DepsFile, launch.RuntimeConfig], cancellationToken).ConfigureAwait(false);
            return new SlurmSite(allocation, launcher, address);
        }
        catch
        {
            await allocation.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override WorkerListener CreateListener() => new TlsListener(_address, _certificate);

    public override string? Place() => _allocation.PlaceWorker();

    public override void OnNodeLost(string node) => _allocation.ExcludeNode(node);

    public override void Release(string? node)
    {
        if (node is not null)
        {
            _allocation.ReleaseWorker(node);
        }
    }

    public override ProcessStartInfo CreateStartInfo(WorkerLaunch launch, string? node, WorkerSetup setup, IReadOnlyDictionary<string, string?> environment, out bool setupOnStandardInput)
    {
        setupOnStandardInput = false;
        ProcessStartInfo worker = launch.CreateStartInfo(environment, remote: true);
        ProcessStartInfo step = _allocation.CreateStepStartInfo(node!, worker.FileName, [.. worker.ArgumentList]);
        // srun passes its own environment to the step: the worker's, and its setup, which no command line shows.
        foreach ((string name, string? value) in worker.Environment)
        {
            step.Environment[name] = value;
        }

        step.Environment[WorkerSetup.EnvironmentVariable] = setup.ToText();
        return step;
    }

    /// <summary>On a node, each worker gets the CPUs Slurm gives its step: <see cref="SlurmLauncher.CpusPerWorker"/>.</summary>
    public override IReadOnlyDictionary<string, string?> WithThreadLimits(IReadOnlyDictionary<string, string?> environment, int workers)
    {
        var merged = new Dictionary<string, string?>(environment);
        foreach (string name in WorkerLaunch.ThreadLimitVariables)
        {
            merged.TryAdd(name, _launcher.CpusPerWorker.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return merged;
    }

    public override async ValueTask DisposeAsync()
    {
        await _allocation.DisposeAsync().ConfigureAwait(false);
        _certificate.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
