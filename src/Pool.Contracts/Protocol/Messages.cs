using System.Buffers;
using System.Diagnostics;

namespace Pool.Contracts;

/// <summary>The protocol's version; host and worker refuse each other when it differs.</summary>
internal static class ProtocolInfo
{
    public const int Version = 6;
}

/// <summary>Worker to host, the first frame: the worker is connected and speaks this protocol.</summary>
internal readonly record struct ReadyMessage(int ProtocolVersion, int ProcessId)
{
    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Ready);
        writer.WriteInt32(ProtocolVersion);
        writer.WriteInt32(ProcessId);
        writer.EndFrame();
    }

    public static ReadyMessage Read(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        return new ReadyMessage(reader.ReadInt32(), reader.ReadInt32());
    }
}

/// <summary>Host to worker, the first frame after <see cref="ReadyMessage"/>.</summary>
/// <param name="WorkerId">The pool's number for this worker, for its log lines.</param>
/// <param name="SerializerType">Assembly-qualified name of the <see cref="PoolSerializer"/> to create; empty for
/// <see cref="MessagePackPoolSerializer"/> (the default), which the worker then creates without parsing a type name.</param>
/// <param name="Initializer">A function to run once before the first task, or null.</param>
/// <param name="InitializerArguments">The initializer's arguments, encoded as a chunk of one task.</param>
/// <param name="MaxConcurrency">How many asynchronous tasks the worker may run at once.</param>
internal sealed record InitMessage(
    int WorkerId,
    string SerializerType,
    FunctionDescriptor? Initializer,
    byte[] InitializerArguments,
    int MaxConcurrency)
{
    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Init);
        writer.WriteInt32(WorkerId);
        writer.WriteString(SerializerType);
        writer.WriteInt32(MaxConcurrency);
        writer.WriteByte(Initializer is null ? (byte)0 : (byte)1);
        Initializer?.Write(writer);
        writer.WriteInt32(InitializerArguments.Length);
        writer.WriteBytes(InitializerArguments);
        writer.EndFrame();
    }

    public static InitMessage Read(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        int workerId = reader.ReadInt32();
        string serializer = reader.ReadRequiredString();
        int concurrency = reader.ReadInt32();
        FunctionDescriptor? initializer = reader.ReadByte() == 1 ? FunctionDescriptor.Read(ref reader) : null;
        byte[] arguments = reader.ReadBytes(reader.ReadInt32()).ToArray();
        return new InitMessage(workerId, serializer, initializer, arguments, concurrency);
    }
}

/// <summary>Host to worker: from now on <paramref name="FunctionId"/> names <paramref name="Function"/>.</summary>
internal sealed record BindMessage(int FunctionId, FunctionDescriptor Function)
{
    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Bind);
        writer.WriteInt32(FunctionId);
        Function.Write(writer);
        writer.EndFrame();
    }

    public static BindMessage Read(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        int id = reader.ReadInt32();
        return new BindMessage(id, FunctionDescriptor.Read(ref reader));
    }
}

/// <summary>Options of one <see cref="MessageType.Run"/> chunk.</summary>
[Flags]
internal enum RunFlags : byte
{
    None = 0,

    /// <summary>The tasks have a deadline: the worker records when each one starts.</summary>
    Timed = 1,

    /// <summary>The header carries a W3C trace context (<see cref="RunHeader.Trace"/>): the caller's activity, or the pool's for this chunk.</summary>
    Traced = 2,
}

/// <summary>
/// Host to worker: run <see cref="Count"/> tasks of one function. With <see cref="RunFlags.Traced"/> the header ends
/// with a W3C trace context (16 bytes of trace id, 8 of span id, 1 of trace flags), the parent of the activity the
/// worker runs the chunk in. The frame's payload after the header is the arguments, task after task, each encoded by
/// the function's argument codec.
/// </summary>
internal readonly record struct RunHeader(int ChunkId, int FunctionId, int Count, RunFlags Flags, ActivityContext Trace = default)
{
    /// <summary>Bytes from the start of the payload to the position of <see cref="Count"/>.</summary>
    public const int CountOffset = 8;

    /// <summary>The bytes of the header without a trace context.</summary>
    public const int Size = 13;

    /// <summary>The bytes a trace context adds.</summary>
    public const int TraceSize = 25;

    /// <summary>Writes the header into an open frame; returns the position of the count, for patching.</summary>
    public int Write(FrameWriter writer)
    {
        writer.WriteInt32(ChunkId);
        writer.WriteInt32(FunctionId);
        int countPosition = writer.Position;
        writer.WriteInt32(Count);
        writer.WriteByte((byte)Flags);
        if ((Flags & RunFlags.Traced) != 0)
        {
            Span<byte> trace = stackalloc byte[TraceSize];
            Trace.TraceId.CopyTo(trace[..16]);
            Trace.SpanId.CopyTo(trace[16..24]);
            trace[24] = (byte)Trace.TraceFlags;
            writer.WriteBytes(trace);
        }

        return countPosition;
    }

    public static RunHeader Read(ref SequenceReader<byte> reader)
    {
        var header = new RunHeader(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), (RunFlags)reader.ReadByte());
        if ((header.Flags & RunFlags.Traced) == 0)
        {
            return header;
        }

        Span<byte> trace = stackalloc byte[TraceSize];
        if (!reader.TryCopyTo(trace))
        {
            throw WireReader.Truncated();
        }

        reader.Advance(TraceSize);
        var context = new ActivityContext(
            ActivityTraceId.CreateFromBytes(trace[..16]), ActivitySpanId.CreateFromBytes(trace[16..24]), (ActivityTraceFlags)(trace[24] & 1), isRemote: true);
        return header with { Trace = context };
    }
}

/// <summary>
/// Worker to host: the values of tasks <see cref="Offset"/> .. <see cref="Offset"/> + <see cref="Count"/> - 1
/// of chunk <see cref="ChunkId"/>, encoded by the function's result codec, follow this header.
/// </summary>
internal readonly record struct ResultsHeader(int ChunkId, int Offset, int Count)
{
    public static ResultsHeader Read(ref SequenceReader<byte> reader) =>
        new(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32());
}

/// <summary>Why the tasks of a <see cref="FailedMessage"/> have no value.</summary>
internal enum FailureKind : byte
{
    /// <summary>The function (or the decoding of an argument, or the encoding of the result) threw.</summary>
    Error = 1,

    /// <summary>The host cancelled them.</summary>
    Canceled = 2,
}

/// <summary>Worker to host: tasks <see cref="Offset"/> .. + <see cref="Count"/> - 1 of a chunk have no value.</summary>
internal sealed record FailedMessage(int ChunkId, int Offset, int Count, FailureKind Kind, RemoteError? Error)
{
    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Failed);
        writer.WriteInt32(ChunkId);
        writer.WriteInt32(Offset);
        writer.WriteInt32(Count);
        writer.WriteByte((byte)Kind);
        if (Kind == FailureKind.Error)
        {
            (Error ?? throw new InvalidOperationException("An error failure needs its error.")).Write(writer);
        }

        writer.EndFrame();
    }

    public static FailedMessage Read(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        int chunk = reader.ReadInt32();
        int offset = reader.ReadInt32();
        int count = reader.ReadInt32();
        var kind = (FailureKind)reader.ReadByte();
        RemoteError? error = kind == FailureKind.Error ? RemoteError.Read(ref reader) : null;
        return new FailedMessage(chunk, offset, count, kind, error);
    }
}

/// <summary>
/// Host to worker: cancel task <see cref="Index"/> of chunk <see cref="ChunkId"/> if it is running (its token
/// is cancelled, the chunk goes on), or with <see cref="WholeChunk"/> skip the rest of the chunk too.
/// </summary>
internal readonly record struct CancelMessage(int ChunkId, int Index)
{
    public const int WholeChunk = -1;

    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Cancel);
        writer.WriteInt32(ChunkId);
        writer.WriteInt32(Index);
        writer.EndFrame();
    }

    public static CancelMessage Read(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        return new CancelMessage(reader.ReadInt32(), reader.ReadInt32());
    }
}

/// <summary>
/// Worker to host, from a worker whose host cannot map its <see cref="ProgressCell"/> (on another machine): the
/// cell's two slots, each <see cref="ProgressCell.Idle"/> or a chunk and task packed, with for how long, in
/// microseconds (a duration, not a time: the two machines' clocks are not compared): the task running, and the task
/// whose arguments the worker's reader is decoding.
/// </summary>
internal readonly record struct ProgressMessage(long Position, long ElapsedMicroseconds, long Decoding, long DecodingMicroseconds)
{
    /// <summary>The payload's size: four 64-bit integers, nothing else.</summary>
    public const int Size = 32;

    public void Write(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Progress);
        writer.WriteInt64(Position);
        writer.WriteInt64(ElapsedMicroseconds);
        writer.WriteInt64(Decoding);
        writer.WriteInt64(DecodingMicroseconds);
        writer.EndFrame();
    }

    /// <exception cref="ProtocolException">The payload is not <see cref="Size"/> bytes.</exception>
    public static ProgressMessage Read(ReadOnlySequence<byte> payload)
    {
        if (payload.Length != Size)
        {
            throw new ProtocolException($"it sent a progress frame of {payload.Length} bytes, not {Size}");
        }

        var reader = new SequenceReader<byte>(payload);
        return new ProgressMessage(reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64());
    }
}

/// <summary>Small frames whose payload is one integer, an error, or nothing.</summary>
internal static class SimpleMessages
{
    public static void WriteInitialized(FrameWriter writer)
    {
        writer.BeginFrame(MessageType.Initialized);
        writer.EndFrame();
    }

    public static void WriteUnbind(FrameWriter writer, int functionId) => WriteInt(writer, MessageType.Unbind, functionId);

    public static int ReadInt(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        return reader.ReadInt32();
    }

    public static void WriteInitFailed(FrameWriter writer, RemoteError error)
    {
        writer.BeginFrame(MessageType.InitFailed);
        error.Write(writer);
        writer.EndFrame();
    }

    public static RemoteError ReadInitFailed(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        return RemoteError.Read(ref reader);
    }

    private static void WriteInt(FrameWriter writer, MessageType type, int value)
    {
        writer.BeginFrame(type);
        writer.WriteInt32(value);
        writer.EndFrame();
    }
}
