using System.IO.Pipelines;
using Pool.Contracts;

namespace Pool.Tests.Unit;

/// <summary>The handshake proves the pool's secret both ways and gives a wrong peer nothing but a random challenge.</summary>
public class WorkerHandshakeTests
{
    [Fact(Timeout = 10_000)]
    public async Task Two_ends_with_the_same_secret_accept_each_other()
    {
        byte[] secret = WorkerHandshake.NewSecret();
        (Stream host, Stream worker) = Duplex();

        Task<bool> hostSide = WorkerHandshake.AuthenticateWorkerAsync(host, secret, CancellationToken.None);
        await Task.Run(() => WorkerHandshake.AuthenticateHost(worker, worker, secret)).Within();

        (await hostSide.Within()).Should().BeTrue();
    }

    [Fact(Timeout = 10_000)]
    public async Task A_worker_with_another_secret_is_refused_and_receives_only_the_challenge()
    {
        (Stream host, Stream worker) = Duplex();

        Task<bool> hostSide = WorkerHandshake.AuthenticateWorkerAsync(host, WorkerHandshake.NewSecret(), CancellationToken.None);
        Task workerSide = Task.Run(() => WorkerHandshake.AuthenticateHost(worker, worker, WorkerHandshake.NewSecret()));

        (await hostSide.Within()).Should().BeFalse();
        host.Dispose();
        await workerSide.Invoking(t => t.Within()).Should().ThrowAsync<ProtocolException>().WithMessage("*closed the connection*");
    }

    [Fact(Timeout = 10_000)]
    public async Task A_host_that_does_not_know_the_secret_is_refused_by_the_worker()
    {
        (Stream host, Stream worker) = Duplex();
        byte[] challenge = new byte[WorkerHandshake.ChallengeSize];
        "PPAUTH01"u8.CopyTo(challenge);
        await host.WriteAsync(challenge);
        await host.WriteAsync(new byte[32]);

        Action authenticate = () => WorkerHandshake.AuthenticateHost(worker, worker, WorkerHandshake.NewSecret());

        authenticate.Should().Throw<ProtocolException>().WithMessage("*proof*wrong*");
    }

    /// <summary>Two connected ends, each a stream that reads what the other writes.</summary>
    private static (Stream A, Stream B) Duplex()
    {
        var toB = new Pipe();
        var toA = new Pipe();
        return (new DuplexStream(toA.Reader.AsStream(), toB.Writer.AsStream()), new DuplexStream(toB.Reader.AsStream(), toA.Writer.AsStream()));
    }

    private sealed class DuplexStream(Stream input, Stream output) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => output.Flush();

        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => input.ReadAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => output.WriteAsync(buffer, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                input.Dispose();
                output.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
