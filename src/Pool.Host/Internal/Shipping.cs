using System.Buffers;
using Pool.Contracts;

namespace Pool.Internal;

/// <summary>Checks at the call, before anything is sent, that a value survives the trip to a worker.</summary>
internal static class Shipping
{
    [ThreadStatic]
    private static FrameWriter? t_scratch;

    /// <summary>
    /// Checks <paramref name="value"/> as a task's arguments: what its codecs can refuse without writing it (a string's lone
    /// surrogate), and, when a value goes through the serializer, writes it, reads it back as a worker would, and
    /// compares the copy with the value (see <see cref="Fidelity"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The value does not serialize, does not deserialize, or arrives different; the message says where.</exception>
    public static void CheckArgument<TArgs>(ArgsCodec<TArgs> args, TArgs value, PoolSerializer serializer, string parameterName)
    {
        try
        {
            args.Validate(value);
        }
        catch (Exception e)
        {
            throw Refused(value, serializer, parameterName, e);
        }

        if (!args.CanFail)
        {
            return;
        }

        FrameWriter scratch = t_scratch ??= new FrameWriter(4096);
        scratch.Reset();
        TArgs copy;
        try
        {
            args.Write(scratch, value);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(scratch.WrittenMemory));
            copy = args.Read(ref reader);
        }
        catch (Exception e)
        {
            throw Refused(value, serializer, parameterName, e);
        }
        finally
        {
            scratch.Reset();
        }

        if (Fidelity.Find(value, copy, typeof(TArgs), serializer) is { } difference)
        {
            throw new ArgumentException(
                $"{What(value, parameterName)} would not arrive in a worker as it is with {serializer.GetType().Name}: {difference}. {Fidelity.HowToKeep(difference, serializer)}",
                parameterName);
        }
    }

    /// <summary>
    /// Whatever the serializer (or a codec's own check) throws, the call fails here, naming the value, instead of in a
    /// worker. An ArgumentException or NotSupportedException from it already says what to do; a declaration no
    /// serializer can honour (an interface, a delegate) gets its own fix first.
    /// </summary>
    private static ArgumentException Refused<TArgs>(TArgs value, PoolSerializer serializer, string parameterName, Exception e)
    {
        if (ValueAdvice.For(typeof(TArgs), value, "The function's parameter") is { } advice)
        {
            return new ArgumentException(
                $"{What(value, parameterName)} cannot be sent to a worker with {serializer.GetType().Name}. {advice} ({serializer.GetType().Name} said: {ValueAdvice.Innermost(e).Message})",
                parameterName,
                e);
        }

        return new ArgumentException(
            $"{What(value, parameterName)} cannot be sent to a worker with {serializer.GetType().Name}: {Sentence(e.Message)}{ThrownBy(e)}" + (e is ArgumentException or NotSupportedException ? string.Empty :
            " Pass plain data (numbers, strings, arrays, records or classes with public properties and a constructor the serializer can use), " +
            "or set ProcessPoolOptions.Serializer to one that handles this type."),
            parameterName,
            e);
    }

    /// <summary>"The first item (a Shop.Order)", "The argument (a Int32)".</summary>
    private static string What<TArgs>(TArgs value, string parameterName) =>
        $"{(parameterName == "items" ? "The first item" : "The argument")} (a {TypeFacts.Describe(value?.GetType() ?? typeof(TArgs))})";

    /// <summary>A message that ends as a sentence, so that what follows it reads apart.</summary>
    private static string Sentence(string message)
    {
        message = message.TrimEnd();
        return message.Length == 0 || message[^1] is '.' or '!' or '?' or ')' ? message : message + ".";
    }

    /// <summary>The property whose getter threw, when it was one (the serializer's message names only the type).</summary>
    private static string ThrownBy(Exception e) =>
        ValueAdvice.Innermost(e) is { TargetSite: { } site } innermost && site.Name.StartsWith("get_", StringComparison.Ordinal) && site.DeclaringType is { } owner
            ? $" (the getter of {owner.Name}.{site.Name[4..]} threw {innermost.GetType().Name}.)"
            : string.Empty;
}
