using System.Buffers;
using System.Runtime.ExceptionServices;

namespace Pool.Contracts;

/// <summary>
/// The arguments of one task, one value after another: a function of arity 2 takes its arguments as
/// <c>(T1, T2)</c>, written as a <typeparamref name="TArgs"/> of <c>ValueTuple</c> shape. Host and worker
/// build the same codec from the same delegate type, so the bytes need no description.
/// </summary>
internal abstract class ArgsCodec<TArgs>
{
    /// <summary>Bytes per task when they are all the same, else -1.</summary>
    public abstract int FixedSize { get; }

    /// <summary>Whether a value can fail to travel, or arrive different: one that goes through the serializer.</summary>
    public abstract bool CanFail { get; }

    public abstract void Write(FrameWriter writer, in TArgs args);

    /// <summary>Throws what writing the arguments would throw, where a codec knows it without writing them (see <see cref="Codec{T}.Validate"/>).</summary>
    public virtual void Validate(in TArgs args)
    {
    }

    /// <summary>Reads one task's arguments. If one of them fails, the others are still read past, then
    /// the first failure is thrown: the reader always ends after this task.</summary>
    public abstract TArgs Read(ref SequenceReader<byte> reader);

    public virtual void WriteMany(FrameWriter writer, ReadOnlySpan<TArgs> values)
    {
        foreach (ref readonly TArgs value in values)
        {
            Write(writer, value);
        }
    }

    protected static T ReadOne<T>(Codec<T> codec, ref SequenceReader<byte> reader, ref ExceptionDispatchInfo? error)
    {
        try
        {
            return codec.Read(ref reader);
        }
        catch (Exception e) when (e is not ProtocolException)
        {
            // The codec advanced past the value; keep reading the task's other arguments.
            error ??= ExceptionDispatchInfo.Capture(e);
            return default!;
        }
    }
}

/// <summary>Builds argument codecs from types, for the worker, which knows them only at run time.</summary>
internal static class ArgsCodecs
{
    public static object Create(CodecProvider codecs, Type[] parameterTypes) => parameterTypes.Length switch
    {
        0 => new Args0(),
        1 => Activator.CreateInstance(typeof(Args1<>).MakeGenericType(parameterTypes), codecs.Get(parameterTypes[0]))!,
        2 => Activator.CreateInstance(typeof(Args2<,>).MakeGenericType(parameterTypes), Codecs(codecs, parameterTypes))!,
        3 => Activator.CreateInstance(typeof(Args3<,,>).MakeGenericType(parameterTypes), Codecs(codecs, parameterTypes))!,
        4 => Activator.CreateInstance(typeof(Args4<,,,>).MakeGenericType(parameterTypes), Codecs(codecs, parameterTypes))!,
        _ => throw new NotSupportedException($"Functions of {parameterTypes.Length} arguments are not supported; take at most 4, or one record."),
    };

    /// <summary>The type that carries the arguments of a function with these parameters.</summary>
    public static Type PackType(Type[] parameterTypes) => parameterTypes.Length switch
    {
        0 => typeof(ValueTuple),
        1 => parameterTypes[0],
        2 => typeof(ValueTuple<,>).MakeGenericType(parameterTypes),
        3 => typeof(ValueTuple<,,>).MakeGenericType(parameterTypes),
        4 => typeof(ValueTuple<,,,>).MakeGenericType(parameterTypes),
        _ => throw new NotSupportedException($"Functions of {parameterTypes.Length} arguments are not supported; take at most 4, or one record."),
    };

    private static object[] Codecs(CodecProvider codecs, Type[] types) => Array.ConvertAll(types, codecs.Get);
}

internal sealed class Args0 : ArgsCodec<ValueTuple>
{
    public override int FixedSize => 0;

    public override bool CanFail => false;

    public override void Write(FrameWriter writer, in ValueTuple args)
    {
    }

    public override ValueTuple Read(ref SequenceReader<byte> reader) => default;
}

internal sealed class Args1<T>(Codec<T> codec) : ArgsCodec<T>
{
    public Codec<T> Codec => codec;

    public override int FixedSize => codec.FixedSize;

    public override bool CanFail => codec.CanFail;

    public override void Write(FrameWriter writer, in T args) => codec.Write(writer, args);

    public override void Validate(in T args) => codec.Validate(args);

    public override T Read(ref SequenceReader<byte> reader) => codec.Read(ref reader);

    public override void WriteMany(FrameWriter writer, ReadOnlySpan<T> values) => codec.WriteMany(writer, values);
}

internal sealed class Args2<T1, T2>(Codec<T1> c1, Codec<T2> c2) : ArgsCodec<(T1, T2)>
{
    public override int FixedSize => Sum(c1.FixedSize, c2.FixedSize);

    public override bool CanFail => c1.CanFail || c2.CanFail;

    public override void Validate(in (T1, T2) args)
    {
        c1.Validate(args.Item1);
        c2.Validate(args.Item2);
    }

    public override void Write(FrameWriter writer, in (T1, T2) args)
    {
        c1.Write(writer, args.Item1);
        c2.Write(writer, args.Item2);
    }

    public override (T1, T2) Read(ref SequenceReader<byte> reader)
    {
        ExceptionDispatchInfo? error = null;
        var args = (ReadOne(c1, ref reader, ref error), ReadOne(c2, ref reader, ref error));
        error?.Throw();
        return args;
    }

    internal static int Sum(params ReadOnlySpan<int> sizes)
    {
        int total = 0;
        foreach (int size in sizes)
        {
            if (size < 0)
            {
                return -1;
            }

            total += size;
        }

        return total;
    }
}

internal sealed class Args3<T1, T2, T3>(Codec<T1> c1, Codec<T2> c2, Codec<T3> c3) : ArgsCodec<(T1, T2, T3)>
{
    public override int FixedSize => Args2<T1, T2>.Sum(c1.FixedSize, c2.FixedSize, c3.FixedSize);

    public override bool CanFail => c1.CanFail || c2.CanFail || c3.CanFail;

    public override void Validate(in (T1, T2, T3) args)
    {
        c1.Validate(args.Item1);
        c2.Validate(args.Item2);
        c3.Validate(args.Item3);
    }

    public override void Write(FrameWriter writer, in (T1, T2, T3) args)
    {
        c1.Write(writer, args.Item1);
        c2.Write(writer, args.Item2);
        c3.Write(writer, args.Item3);
    }

    public override (T1, T2, T3) Read(ref SequenceReader<byte> reader)
    {
        ExceptionDispatchInfo? error = null;
        var args = (ReadOne(c1, ref reader, ref error), ReadOne(c2, ref reader, ref error), ReadOne(c3, ref reader, ref error));
        error?.Throw();
        return args;
    }
}

internal sealed class Args4<T1, T2, T3, T4>(Codec<T1> c1, Codec<T2> c2, Codec<T3> c3, Codec<T4> c4) : ArgsCodec<(T1, T2, T3, T4)>
{
    public override int FixedSize => Args2<T1, T2>.Sum(c1.FixedSize, c2.FixedSize, c3.FixedSize, c4.FixedSize);

    public override bool CanFail => c1.CanFail || c2.CanFail || c3.CanFail || c4.CanFail;

    public override void Validate(in (T1, T2, T3, T4) args)
    {
        c1.Validate(args.Item1);
        c2.Validate(args.Item2);
        c3.Validate(args.Item3);
        c4.Validate(args.Item4);
    }

    public override void Write(FrameWriter writer, in (T1, T2, T3, T4) args)
    {
        c1.Write(writer, args.Item1);
        c2.Write(writer, args.Item2);
        c3.Write(writer, args.Item3);
        c4.Write(writer, args.Item4);
    }

    public override (T1, T2, T3, T4) Read(ref SequenceReader<byte> reader)
    {
        ExceptionDispatchInfo? error = null;
        var args = (ReadOne(c1, ref reader, ref error), ReadOne(c2, ref reader, ref error), ReadOne(c3, ref reader, ref error), ReadOne(c4, ref reader, ref error));
        error?.Throw();
        return args;
    }
}
