using System.Threading.Channels;

namespace Pool.Internal;

/// <summary>
/// An asynchronous auto-reset event for one waiter: <see cref="Set"/> is sticky until the next wait, so a
/// wake-up is never lost between checking for work and waiting for it. A bounded channel of one slot
/// that drops extra writes does exactly this, and waits without allocating.
/// </summary>
internal sealed class Signal
{
    private readonly Channel<bool> _channel = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
        AllowSynchronousContinuations = false,
    });

    public void Set() => _channel.Writer.TryWrite(true);

    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken = default) => _channel.Reader.ReadAsync(cancellationToken);
}
