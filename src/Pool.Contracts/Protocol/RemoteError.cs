using System.Buffers;

namespace Pool.Contracts;

/// <summary>
/// An exception as data: what crosses the pipe when a function throws. Exception objects are never
/// serialized; their type name, message, stack text and inner exceptions are.
/// </summary>
internal sealed record RemoteError(
    string TypeName,
    string AssemblyName,
    string Message,
    string? StackTrace,
    IReadOnlyList<RemoteError> InnerErrors)
{
    private const int MaxDepth = 8;

    public static RemoteError FromException(Exception exception) => FromException(exception, 0);

    public void Write(FrameWriter writer)
    {
        writer.WriteString(TypeName);
        writer.WriteString(AssemblyName);
        writer.WriteString(Message);
        writer.WriteString(StackTrace);
        writer.WriteInt32(InnerErrors.Count);
        foreach (RemoteError inner in InnerErrors)
        {
            inner.Write(writer);
        }
    }

    public static RemoteError Read(ref SequenceReader<byte> reader) => Read(ref reader, 0);

    private static RemoteError FromException(Exception exception, int depth)
    {
        Type type = exception.GetType();
        var inner = new List<RemoteError>();
        if (depth < MaxDepth)
        {
            if (exception is AggregateException aggregate)
            {
                foreach (Exception e in aggregate.InnerExceptions)
                {
                    inner.Add(FromException(e, depth + 1));
                }
            }
            else if (exception.InnerException is { } e)
            {
                inner.Add(FromException(e, depth + 1));
            }
        }

        return new RemoteError(
            type.FullName ?? type.Name,
            type.Assembly.GetName().Name ?? string.Empty,
            exception.Message,
            exception.StackTrace,
            inner);
    }

    private static RemoteError Read(ref SequenceReader<byte> reader, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new ProtocolException("A remote error nests deeper than any worker writes.");
        }

        string type = reader.ReadRequiredString();
        string assembly = reader.ReadRequiredString();
        string message = reader.ReadRequiredString();
        string? stack = reader.ReadString();
        int count = reader.ReadInt32();
        if (count < 0 || count > 1024)
        {
            throw new ProtocolException($"A remote error claims {count} inner errors.");
        }

        var inner = new RemoteError[count];
        for (int i = 0; i < count; i++)
        {
            inner[i] = Read(ref reader, depth + 1);
        }

        return new RemoteError(type, assembly, message, stack, inner);
    }
}
