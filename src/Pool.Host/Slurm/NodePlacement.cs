namespace Pool.Internal;

/// <summary>
/// Spreads workers over an allocation's nodes: each new worker goes to the node with the fewest live workers, the
/// first such node in the allocation's order on a tie, so that N workers on M nodes differ by at most one per node
/// and a replacement goes back where a worker was lost. A node declared lost (<see cref="Exclude"/>) gets no more
/// workers: the pool's own liveness sees a silent node within seconds, long before Slurm marks it down (25-29 s).
/// </summary>
internal sealed class NodePlacement
{
    private readonly IReadOnlyList<string> _nodes;
    private readonly int[] _live;
    private readonly bool[] _excluded;
    private readonly Lock _lock = new();

    public NodePlacement(IReadOnlyList<string> nodes)
    {
        if (nodes.Count == 0)
        {
            throw new ArgumentException("An allocation has at least one node.", nameof(nodes));
        }

        _nodes = nodes;
        _live = new int[nodes.Count];
        _excluded = new bool[nodes.Count];
    }

    /// <summary>The node for the next worker, counted as live there until <see cref="Release"/>.</summary>
    /// <exception cref="WorkerStartException">Every node is excluded.</exception>
    public string Place()
    {
        lock (_lock)
        {
            int best = -1;
            for (int i = 0; i < _live.Length; i++)
            {
                if (!_excluded[i] && (best < 0 || _live[i] < _live[best]))
                {
                    best = i;
                }
            }

            if (best < 0)
            {
                throw new WorkerStartException($"Every node of the allocation is lost ({string.Join(", ", _nodes)}): no worker can start.");
            }

            _live[best]++;
            return _nodes[best];
        }
    }

    /// <summary>No more workers go to <paramref name="node"/> (it was lost); its live workers still count until released.</summary>
    /// <exception cref="ArgumentException">The node is not one of the allocation's.</exception>
    public void Exclude(string node)
    {
        lock (_lock)
        {
            int index = IndexOf(node);
            if (index < 0)
            {
                throw new ArgumentException($"{node} is not a node of the allocation.", nameof(node));
            }

            _excluded[index] = true;
        }
    }

    /// <summary>A worker on <paramref name="node"/> is gone.</summary>
    /// <exception cref="ArgumentException">The node is not one of the allocation's, or has no live worker.</exception>
    public void Release(string node)
    {
        lock (_lock)
        {
            int index = IndexOf(node);
            if (index < 0 || _live[index] == 0)
            {
                throw new ArgumentException($"No live worker was placed on node {node}.", nameof(node));
            }

            _live[index]--;
        }
    }

    /// <summary>How many live workers are on <paramref name="node"/>.</summary>
    public int LiveOn(string node)
    {
        lock (_lock)
        {
            int index = IndexOf(node);
            return index < 0 ? 0 : _live[index];
        }
    }

    private int IndexOf(string node)
    {
        for (int i = 0; i < _nodes.Count; i++)
        {
            if (string.Equals(_nodes[i], node, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}
