using Pool.Contracts;

namespace Pool.Internal;

/// <summary>The pool's initializer: the function, its delegate type, and how to encode its arguments with the pool's codecs.</summary>
internal sealed record PoolInitializer(Delegate Function, Type DelegateType, Func<CodecProvider, byte[]> EncodeArguments)
{
    public static byte[] Encode<TArgs>(ArgsCodec<TArgs> codec, TArgs values)
    {
        using var writer = new FrameWriter();
        codec.Write(writer, values);
        return writer.WrittenMemory.ToArray();
    }
}
