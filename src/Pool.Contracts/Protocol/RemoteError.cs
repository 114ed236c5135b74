using System.Buffers;

namespace Pool.Contracts;

/// <summary>
/// An exception as data: what crosses the pipe when a function throws. Exception objects are never
/// serialized; their type name, message, stack text and inner exceptions are, and the simple values of their
/// state (<see cref="RemoteState"/>), from which the host rebuilds the exception as its own type.
/// </summary>
internal sealed record RemoteError(
    string TypeName,
    string AssemblyName,
    string Message,
    string? StackTrace,
    IReadOnlyList<RemoteError> InnerErrors)
{
    private const int MaxDepth = 8;

    // The most errors one report carries, inner ones included (an AggregateException from a Parallel.ForEach over
    // failing items may hold thousands): the first ones are kept, and the reader refuses more than this at a level.
    private const int MaxErrors = 1024;

    /// <summary>The exception's state beyond its message and inner exceptions; empty for an error the pool describes itself.</summary>
    public RemoteState State { get; init; } = RemoteState.Empty;

    /// <summary>
    /// Describes <paramref name="exception"/>. Never throws: a <c>Message</c> or <c>StackTrace</c> that throws or is
    /// null is described in its place, so that a strange exception fails its task rather than the worker.
    /// </summary>
    public static RemoteError FromException(Exception exception)
    {
        int budget = MaxErrors;
        return FromException(exception, 0, ref budget);
    }

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

        State.Write(writer);
    }

    public static RemoteError Read(ref SequenceReader<byte> reader) => Read(ref reader, 0);

    private static RemoteError FromException(Exception exception, int depth, ref int budget)
    {
        budget--;
        Type type = exception.GetType();
        var inner = new List<RemoteError>();
        if (depth < MaxDepth)
        {
            if (exception is AggregateException aggregate)
            {
                foreach (Exception e in aggregate.InnerExceptions)
                {
                    if (budget <= 0)
                    {
                        break;
                    }

                    inner.Add(FromException(e, depth + 1, ref budget));
                }
            }
            else if (exception.InnerException is { } e && budget > 0)
            {
                inner.Add(FromException(e, depth + 1, ref budget));
            }
        }

        return new RemoteError(
            type.FullName ?? type.Name,
            type.Assembly.GetName().Name ?? string.Empty,
            Describe(exception, static e => e.Message, "Message") ?? string.Empty,
            Describe(exception, static e => e.StackTrace, "StackTrace"),
            inner)
        {
            State = RemoteState.Of(exception),
        };
    }

    /// <summary>A property of a user's exception, which may be overridden to throw.</summary>
    private static string? Describe(Exception exception, Func<Exception, string?> property, string name)
    {
        try
        {
            return property(exception);
        }
        catch (Exception e)
        {
            // Any exception: the getter is the user's code, and this report is how its task fails.
            return $"(its {name} could not be read: {e.GetType().FullName} was thrown)";
        }
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
        if (count < 0 || count > MaxErrors)
        {
            throw new ProtocolException($"A remote error claims {count} inner errors.");
        }

        var inner = new RemoteError[count];
        for (int i = 0; i < count; i++)
        {
            inner[i] = Read(ref reader, depth + 1);
        }

        return new RemoteError(type, assembly, message, stack, inner) { State = RemoteState.Read(ref reader) };
    }
}
