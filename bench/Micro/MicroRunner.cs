using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Pool.Bench.Micro;

/// <summary>
/// <c>--micro</c>: the BenchmarkDotNet micro-benchmarks of the library's hot paths (framing, codecs, the
/// reorder buffer). Every other argument goes to <see cref="BenchmarkSwitcher"/>, e.g.
/// <c>--filter *Codec*</c>, <c>--job short</c>, <c>--list flat</c>. Results land in artifacts/bench/micro.
/// </summary>
internal static class MicroRunner
{
    public static int Run(string[] args)
    {
        string[] rest = [.. args.Where(a => a != "--micro")];
        IConfig config = DefaultConfig.Instance
            .WithArtifactsPath(Path.Combine(RunInfo.FindRepoRoot(), "artifacts", "bench", "micro"));
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(MicroRunner).Assembly).Run(rest, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
