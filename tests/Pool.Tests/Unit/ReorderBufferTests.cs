using Pool.Internal;

namespace Pool.Tests.Unit;

public class ReorderBufferTests
{
    [Fact]
    public void Outcomes_put_out_of_order_are_taken_in_order()
    {
        var buffer = new ReorderBuffer<int>();
        int[] order = [3, 0, 2, 5, 1, 4];
        var taken = new List<long>();
        foreach (int index in order)
        {
            buffer.Put(new Outcome<int>(index, index * 10));
            while (buffer.TryTake(out Outcome<int> outcome))
            {
                outcome.Value.Should().Be((int)outcome.Index * 10);
                taken.Add(outcome.Index);
            }
        }

        taken.Should().Equal(0, 1, 2, 3, 4, 5);
        buffer.Next.Should().Be(6);
    }

    [Fact]
    public void The_ring_grows_past_its_first_size_and_keeps_every_outcome()
    {
        var buffer = new ReorderBuffer<string>();
        for (int i = 1000; i >= 1; i--)
        {
            buffer.Put(new Outcome<string>(i, i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        buffer.TryTake(out _).Should().BeFalse("index 0 has not arrived");
        buffer.Put(new Outcome<string>(0, new InvalidOperationException("zero failed")));
        buffer.TryTake(out Outcome<string> first).Should().BeTrue();
        first.Succeeded.Should().BeFalse();
        for (int i = 1; i <= 1000; i++)
        {
            buffer.TryTake(out Outcome<string> next).Should().BeTrue();
            next.Value.Should().Be(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public void An_outcome_that_arrives_twice_is_a_bug_made_loud()
    {
        var buffer = new ReorderBuffer<int>();
        buffer.Put(new Outcome<int>(2, 1));
        Action again = () => buffer.Put(new Outcome<int>(2, 1));
        again.Should().Throw<InvalidOperationException>().WithMessage("*twice*");
    }
}
