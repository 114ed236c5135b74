using System.Buffers;
using MessagePack;
using Pool.Tests.Shipping;

namespace Pool.Tests.Unit;

/// <summary>The default serializer on its own: the bytes never name a type it then creates, and it is the default.</summary>
public class MessagePackSerializerTests
{
    [Fact]
    public void Bytes_that_name_a_type_in_a_member_declared_object_never_create_it()
    {
        var serializer = new MessagePackPoolSerializer();
        byte[] typeless = MessagePackSerializer.Typeless.Serialize(new FidelityTests.Counter().Add2());

        object? read = null;
        Action deserialize = () => read = serializer.Deserialize<object>(new ReadOnlySequence<byte>(typeless));

        try
        {
            deserialize();
        }
        catch (MessagePackSerializationException)
        {
            // Refusing the bytes is as good as reading them as data.
        }

        (read is FidelityTests.Counter).Should().BeFalse("only the types the signature declares are created");
    }

    [Fact]
    public void The_default_serializer_is_messagepack_and_json_stays_an_option()
    {
        PoolSerializer.Default.Should().BeOfType<MessagePackPoolSerializer>();
        new ProcessPoolOptions().Serializer.Should().BeNull("a pool without one uses PoolSerializer.Default");
        new ProcessPoolOptions { Serializer = new JsonPoolSerializer() }.Serializer.Should().BeOfType<JsonPoolSerializer>();
    }
}
