using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Pool.Tests;

/// <summary>How a task can corrupt its worker's stream to the pool: bytes written to the pipe behind the worker's back.</summary>
public enum StreamFault
{
    /// <summary>A length prefix of almost 1 GiB, and nothing after it.</summary>
    BogusLength = -1,

    /// <summary>A 6-byte header of a 1 GiB block of doubles, which no task of the call expects.</summary>
    BlockHeader = -2,

    /// <summary>The first 10 bytes of a 100-byte results frame.</summary>
    TruncatedFrame = -3,

    /// <summary>A whole, well-formed results frame for a chunk the worker was never sent.</summary>
    ResultNotHeld = -4,

    /// <summary>A second Ready frame, long after the worker said Ready.</summary>
    SecondReady = -5,
}

/// <summary>Shipped functions that write to their own worker's pipe to the pool, as a stray native library could.</summary>
public static class StreamFaults
{
    /// <summary>Returns 2x, or first writes the fault that the negative <paramref name="x"/> names, then returns.</summary>
    public static int DoubleOrCorrupt(int x)
    {
        if (x >= 0)
        {
            return 2 * x;
        }

        byte[] bytes = (StreamFault)x switch
        {
            StreamFault.BogusLength => [0xF0, 0xFF, 0xFF, 0x3F, 7],
            StreamFault.BlockHeader => Header(1 << 30, 11, 11),
            StreamFault.TruncatedFrame => [.. Header(100, 7), 0, 0, 0, 0, 0],
            StreamFault.ResultNotHeld => Results(chunkId: 999_999, offset: 0, count: 1),
            StreamFault.SecondReady => Header(5, 1, 1, 0, 0, 0),
            _ => throw new ArgumentOutOfRangeException(nameof(x)),
        };
        using var pipe = new FileStream(new SafeFileHandle(PipeDescriptor(), ownsHandle: false), FileAccess.Write, bufferSize: 0);
        pipe.Write(bytes);
        return 2 * x;
    }

    /// <summary>The worker's socket to its host: its only socket.</summary>
    private static nint PipeDescriptor()
    {
        foreach (string fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (File.ResolveLinkTarget(fd, returnFinalTarget: false)?.FullName.Contains("socket:", StringComparison.Ordinal) == true)
                {
                    return int.Parse(Path.GetFileName(fd), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // The descriptor closed while the list was read.
            }
        }

        throw new InvalidOperationException("The worker has no socket.");
    }

    private static byte[] Header(uint length, byte type, params byte[] rest)
    {
        byte[] header = new byte[5 + rest.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(header, length);
        header[4] = type;
        rest.CopyTo(header, 5);
        return header;
    }

    private static byte[] Results(int chunkId, int offset, int count)
    {
        byte[] frame = Header(1 + 12 + 4, 7);
        Array.Resize(ref frame, 5 + 12 + 4);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(5), chunkId);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(9), offset);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(13), count);
        return frame;
    }
}
