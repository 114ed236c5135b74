using System.IO.Pipes;
using Pool.Worker;

namespace Pool.Tests.Unit;

/// <summary>The worker's Linux pipe client against a real .NET named pipe server in this process.</summary>
public class UnixPipeClientTests
{
    [Fact(Timeout = 30_000)]
    public async Task It_connects_to_a_named_pipe_server_named_by_its_path_and_carries_bytes_both_ways()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string path = SocketPath();
        await using var server = new NamedPipeServerStream(path, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous | PipeOptions.CurrentUserOnly);
        Task accepted = server.WaitForConnectionAsync();

        (Stream input, Stream output) = UnixPipeClient.Connect(path, Environment.ProcessId);
        await using (input)
        await using (output)
        {
            await accepted;
            output.Write([1, 2, 3]);
            var received = new byte[3];
            await server.ReadExactlyAsync(received);
            received.Should().Equal(1, 2, 3);

            await server.WriteAsync(new byte[] { 4, 5 });
            server.Disconnect();
            var back = new byte[2];
            input.ReadExactly(back);
            back.Should().Equal(4, 5);
            input.Read(new byte[1]).Should().Be(0, "the server hung up: end of stream, which is how a worker learns its host is gone");
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task It_refuses_a_socket_whose_listener_is_not_the_host_it_was_given()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string path = SocketPath();
        await using var server = new NamedPipeServerStream(path, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
        _ = server.WaitForConnectionAsync();

        Action connect = () => UnixPipeClient.Connect(path, Environment.ProcessId + 1);

        connect.Should().Throw<IOException>().WithMessage($"*is pid {Environment.ProcessId}, not the pool's host (pid {Environment.ProcessId + 1})*");
    }

    [Fact]
    public void It_fails_naming_the_path_when_nothing_listens()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string path = SocketPath();
        Action connect = () => UnixPipeClient.Connect(path, Environment.ProcessId);

        connect.Should().Throw<IOException>().WithMessage($"*connect()*{path}*");
    }

    private static string SocketPath() => Path.Combine(Path.GetTempPath(), "CoreFxPipe_pptest" + Guid.NewGuid().ToString("N"));
}
