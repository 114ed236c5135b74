namespace Pool.Tests.Shipping;

public class ScratchTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    [Fact(Timeout = 60_000)]
    public async Task Scratch()
    {
        int offset = 10;
        var stream = new MemoryStream();
        Action unused = () => stream.WriteByte(1);
        int[] r = await fixture.Pool.MapAsync(x => x + offset, new[] { 1, 2, 3 }).Within();
        r.Should().Equal(11, 12, 13);
        unused.Should().NotBeNull();
    }
}
