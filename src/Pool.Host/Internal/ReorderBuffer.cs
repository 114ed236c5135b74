using System.Numerics;

namespace Pool.Internal;

/// <summary>
/// Outcomes that arrive out of order, handed out in order: a ring indexed by task index. Its size follows
/// the number of tasks in flight (Imap bounds it), so it allocates nothing per task once grown.
/// Not thread-safe: the Imap job holds its lock around it.
/// </summary>
internal sealed class ReorderBuffer<T>
{
    private Outcome<T>[] _slots = new Outcome<T>[16];
    private bool[] _filled = new bool[16];
    private long _next;

    /// <summary>The index the next <see cref="TryTake"/> returns.</summary>
    public long Next => _next;

    public void Put(Outcome<T> outcome)
    {
        long index = outcome.Index;
        if (index < _next)
        {
            throw new InvalidOperationException($"The outcome of task {index} arrived after it was handed out.");
        }

        if (index - _next >= _slots.Length)
        {
            Grow(index - _next + 1);
        }

        int slot = (int)(index & (_slots.Length - 1));
        if (_filled[slot])
        {
            throw new InvalidOperationException($"The outcome of task {index} arrived twice.");
        }

        _slots[slot] = outcome;
        _filled[slot] = true;
    }

    public bool TryTake(out Outcome<T> outcome)
    {
        int slot = (int)(_next & (_slots.Length - 1));
        if (!_filled[slot])
        {
            outcome = default;
            return false;
        }

        outcome = _slots[slot];
        _slots[slot] = default;
        _filled[slot] = false;
        _next++;
        return true;
    }

    private void Grow(long needed)
    {
        int size = (int)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(needed, _slots.Length * 2L));
        var slots = new Outcome<T>[size];
        var filled = new bool[size];
        for (long index = _next; index < _next + _slots.Length; index++)
        {
            int from = (int)(index & (_slots.Length - 1));
            if (_filled[from])
            {
                int to = (int)(index & (size - 1));
                slots[to] = _slots[from];
                filled[to] = true;
            }
        }

        _slots = slots;
        _filled = filled;
    }
}
