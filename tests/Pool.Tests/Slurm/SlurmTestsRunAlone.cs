namespace Pool.Tests.Slurm;

/// <summary>
/// Every test against the cluster belongs here (<c>[Collection("Slurm")]</c>): its two nodes are shared, an allocation
/// of whole nodes waits for every other job to end, and a test that kills a node's slurmd or cuts its link breaks
/// whatever else runs there. xunit runs this collection alone, after the parallel ones.
/// </summary>
[CollectionDefinition("Slurm", DisableParallelization = true)]
public sealed class SlurmTestsRunAlone;
