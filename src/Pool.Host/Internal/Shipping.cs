using System.Buffers;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>Checks at the call, before anything is sent, that a value survives the trip to a worker.</summary>
internal static class Shipping
{
    [ThreadStatic]
    private static FrameWriter? t_scratch;

    /// <exception cref="ArgumentException">The value does not serialize or does not deserialize.</exception>
    public static void CheckArgument<TArgs>(ArgsCodec<TArgs> args, TArgs value, PoolSerializer serializer, string parameterName)
    {
        if (!args.CanFail)
        {
            return;
        }

        FrameWriter scratch = t_scratch ??= new FrameWriter(4096);
        scratch.Reset();
        try
        {
            args.Write(scratch, value);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(scratch.WrittenMemory));
            _ = args.Read(ref reader);
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            // Whatever the serializer throws, the call fails here, naming the value, instead of in a worker.
            throw new ArgumentException(
                $"{(parameterName == "items" ? "The first item" : "The argument")} (a {value?.GetType().FullName ?? typeof(TArgs).FullName}) cannot be sent to a worker with {serializer.GetType().Name}: {e.Message} " +
                "Pass plain data (numbers, strings, arrays, records or classes with public properties and a constructor the serializer can use), " +
                "or set ProcessPoolOptions.Serializer to one that handles this type.",
                parameterName,
                e);
        }
        finally
        {
            scratch.Reset();
        }
    }
}
