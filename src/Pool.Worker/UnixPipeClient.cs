using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Pool.Contracts;

namespace Pool.Worker;

/// <summary>
/// The worker's end of its pipe on Linux, where a .NET named pipe is a Unix domain socket at a path: a socket
/// connected with three system calls and read and written as a file. <see cref="System.IO.Pipes.NamedPipeClientStream"/>
/// connects the same socket, but through System.Net.Sockets, whose first use in a process loads and initializes
/// seven assemblies and its telemetry: 12-15 ms of a worker's ~45 ms start on the 2-core machine, against 3 ms
/// here. Instead of <see cref="System.IO.Pipes.PipeOptions.CurrentUserOnly"/>, the worker checks that the process
/// at the other end is its host.
/// </summary>
internal static partial class UnixPipeClient
{
    private const int AfUnix = 1;
    private const int SockStream = 1;
    private const int SockCloexec = 0x80000;
    private const int SolSocket = 1;
    private const int SoSndbuf = 7;
    private const int SoRcvbuf = 8;
    private const int SoPeercred = 17;
    private const int MaxPathBytes = 107;

    /// <summary>
    /// Connects to the socket at <paramref name="path"/> and returns a stream to read from and one to write to,
    /// over one socket. No retry: the host's server listens before it starts the worker.
    /// </summary>
    /// <exception cref="IOException">The socket failed or nothing listens at <paramref name="path"/>, or the process listening is not <paramref name="host"/>.</exception>
    public static (Stream Input, Stream Output) Connect(string path, int host)
    {
        int fd = Socket(AfUnix, SockStream | SockCloexec, 0);
        if (fd < 0)
        {
            throw Failure("socket()", path);
        }

        var handle = new SafeFileHandle((nint)fd, ownsHandle: true);
        try
        {
            if (ConnectTo(fd, path) != 0)
            {
                throw Failure("connect()", path);
            }

            CheckPeer(fd, path, host);
            SetBuffers(fd);
            return (new FileStream(handle, FileAccess.Read, bufferSize: 0), new FileStream(handle, FileAccess.Write, bufferSize: 0));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects to a socket at a path, or with a leading '@' to a name in Linux's abstract namespace (a NUL byte, then
    /// the name, not terminated: the address length says where it ends, as .NET's UnixDomainSocketEndPoint writes it).
    /// </summary>
    private static unsafe int ConnectTo(int fd, string path)
    {
        // struct sockaddr_un: a 2-byte family, then the path, NUL-terminated, in at most 108 bytes.
        byte* address = stackalloc byte[2 + MaxPathBytes + 1];
        *(ushort*)address = AfUnix;
        bool isAbstract = path.StartsWith('@');
        int length = Encoding.UTF8.GetByteCount(path);
        if (length > MaxPathBytes)
        {
            throw new IOException($"The pipe path {path} is longer than a Unix socket path may be ({MaxPathBytes} bytes).");
        }

        Encoding.UTF8.GetBytes(path, new Span<byte>(address + 2, length));
        if (isAbstract)
        {
            address[2] = 0;
            return ConnectSocket(fd, address, 2 + length);
        }

        address[2 + length] = 0;
        return ConnectSocket(fd, address, 2 + length + 1);
    }

    private static unsafe void CheckPeer(int fd, string path, int host)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        int* credentials = stackalloc int[3];
        int size = 3 * sizeof(int);
        if (GetSocketOption(fd, SolSocket, SoPeercred, credentials, &size) != 0)
        {
            throw Failure("getsockopt(SO_PEERCRED)", path);
        }

        if (credentials[0] != host)
        {
            throw new IOException($"The process listening on {path} is pid {credentials[0]}, not the pool's host (pid {host}).");
        }
    }

    private static unsafe void SetBuffers(int fd)
    {
        // As PipeBuffers.Enlarge does for a PipeStream; the kernel caps the size at net.core.[rw]mem_max.
        int size = PipeBuffers.Size;
        _ = SetSocketOption(fd, SolSocket, SoSndbuf, &size, sizeof(int));
        _ = SetSocketOption(fd, SolSocket, SoRcvbuf, &size, sizeof(int));
    }

    private static IOException Failure(string call, string path)
    {
        int error = Marshal.GetLastPInvokeError();
        return new IOException($"Pool.Worker: {call} failed for {path}: {Marshal.GetPInvokeErrorMessage(error)} (errno {error}).");
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    private static unsafe partial int ConnectSocket(int fd, byte* address, int length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static unsafe partial int GetSocketOption(int fd, int level, int name, void* value, int* length);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static unsafe partial int SetSocketOption(int fd, int level, int name, void* value, int length);
}
