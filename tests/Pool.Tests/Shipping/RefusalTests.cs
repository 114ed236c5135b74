using System.Linq.Expressions;
using System.Runtime.Loader;

namespace Pool.Tests.Shipping;

/// <summary>
/// What cannot ship is refused by the call itself, synchronously (each call below throws instead of returning
/// a task), before any task is sent, with a message that names the culprit, its type, why, and what to do.
/// </summary>
public class RefusalTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task A_closure_capturing_a_stream_is_refused_at_the_call_naming_the_variable()
    {
        var log = new MemoryStream();

        Action map = () => Pool.MapAsync(x => { log.WriteByte((byte)x); return x; }, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithParameterName("fn")
            .WithMessage("fn (lambda in RefusalTests.*) cannot be shipped to a worker: the captured variable `log` is a System.IO.MemoryStream*open in this process only*open the stream inside the function*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_capturing_a_task_is_refused_at_the_call()
    {
        Task<int> pending = Task.FromResult(3);

        Action map = () => Pool.MapAsync(x => x + pending.Result, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*the captured variable `pending` is a System.Threading.Tasks.Task<Int32>*operation running in this process*Await it before the call*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_capturing_a_delegate_is_refused_at_the_call()
    {
        Func<int, int> transform = x => x * 2;

        Action map = () => Pool.MapAsync(x => transform(x) + 1, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*the captured variable `transform` is a Func<Int32, Int32>*delegate*Call the method it points to directly*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_capturing_a_pointer_sized_handle_is_refused_at_the_call()
    {
        IntPtr address = new(0x1234);

        Action map = () => Pool.MapAsync(x => x + address.ToInt32(), new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*the captured variable `address` is a IntPtr*address in this process's memory*Capture the data it points to*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_closure_capturing_a_cancellation_source_is_refused_and_told_to_take_a_token()
    {
        using var cancellation = new CancellationTokenSource();

        Action map = () => Pool.MapAsync(x => cancellation.IsCancellationRequested ? 0 : x, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*`cancellation` is a System.Threading.CancellationTokenSource*Take a CancellationToken as the function's last parameter*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_captured_value_the_serializer_cannot_round_trip_is_refused_naming_it_and_the_serializer_error()
    {
        var lookup = new Dictionary<(int, int), string> { [(1, 2)] = "a" };
        await using ProcessPool json = await TestPools.StartAsync(options: new ProcessPoolOptions { Serializer = new JsonPoolSerializer() });

        Action map = () => json.MapAsync(x => lookup.Count + x, new[] { 1 });

        map.Should().Throw<ArgumentException>()
            .WithMessage("*the captured variable `lookup` (a System.Collections.Generic.Dictionary<ValueTuple<Int32, Int32>, String>) does not survive JsonPoolSerializer:*not a supported dictionary key*")
            .WithInnerException<NotSupportedException>();
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task An_object_that_refers_back_to_itself_is_refused_naming_the_cycle()
    {
        var loop = new SelfReferring();
        loop.Self = loop;

        Action map = () => Pool.MapAsync(x => x + loop.Value, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*property `Self` of the captured variable `loop` (a Pool.Tests.Shipping.SelfReferring) refers back to an object that contains it*[NonSerialized]*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_captured_reflection_object_is_refused_and_told_to_capture_its_name()
    {
        Type type = typeof(int);

        Action map = () => Pool.MapAsync(x => type.Name.Length + x, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("*the captured variable `type` is a Type, and a reflection object*AssemblyQualifiedName*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task An_instance_method_whose_object_holds_a_stream_is_refused_naming_the_field()
    {
        var logger = new StreamLogger("x");

        Action map = () => Pool.MapAsync(logger.Tag, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithParameterName("fn")
            .WithMessage("fn (StreamLogger.Tag(Int32)) cannot be shipped to a worker: field `_sink` of the object the method is called on (a Pool.Tests.Shipping.StreamLogger) is a System.IO.MemoryStream*mark the field [NonSerialized]*");
        logger.Written.Should().Be(0);
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_lambda_capturing_this_of_an_object_holding_a_stream_is_refused_naming_this_and_the_field()
    {
        var report = new Report(scale: 2);

        Action scale = () => report.Scale(Pool, [1]);

        scale.Should().Throw<ArgumentException>().WithMessage("*field `_output` of `this` (a Pool.Tests.Shipping.Report) is a System.IO.MemoryStream*");
        report.Length.Should().Be(0);
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_method_of_a_dynamic_assembly_is_refused_at_the_call()
    {
        Expression<Func<int, int>> expression = x => x * 3;
        Func<int, int> compiled = expression.Compile();

        Action map = () => Pool.MapAsync(compiled, new[] { 1 });

        map.Should().Throw<ArgumentException>().WithMessage("fn is a dynamic method*written in source*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_method_of_a_collectible_assembly_is_refused_at_the_call()
    {
        var context = new AssemblyLoadContext("collectible-functions", isCollectible: true);
        try
        {
            Type functions = context.LoadFromAssemblyPath(typeof(Functions).Assembly.Location).GetType(typeof(Functions).FullName!)!;
            var square = functions.GetMethod(nameof(Functions.Square))!.CreateDelegate<Func<int, int>>();

            Action map = () => Pool.MapAsync(square, new[] { 1 });

            map.Should().Throw<ArgumentException>().WithMessage("fn (Functions.Square(Int32)) is in assembly Pool.Tests, loaded into a collectible AssemblyLoadContext*");
        }
        finally
        {
            context.Unload();
        }

        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_function_returning_a_stream_is_refused_at_the_call_and_one_returning_a_bare_task_is_awaited()
    {
        Action stream = () => Pool.MapAsync(x => new MemoryStream(new byte[x]), new[] { 1 });

        await Pool.MapAsync(x => Task.Delay(x), new[] { 1 }).Within();
        stream.Should().Throw<ArgumentException>().WithMessage("*returns a System.IO.MemoryStream, which cannot come back from a worker*");
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_call_refuses_an_unshippable_function_up_front()
    {
        var log = new MemoryStream();
        Func<int, int> fn = x => x + (int)log.Length;

        new Action[]
        {
            () => Pool.Map(fn, [1]),
            () => Pool.MapOutcomes(fn, [1]),
            () => Pool.Imap(fn, [1]),
            () => Pool.ImapUnordered(fn, [1]),
            () => Pool.Apply(fn, 1),
            () => Pool.ApplyAsync(fn, 1),
            () => Pool.StarMap((int a, int b) => a + b + (int)log.Length, [(1, 2)]),
            () => Pool.Apply(async (int x, CancellationToken ct) => { await Task.Delay(x, ct); return log.Length; }, 1),
        }.Should().AllSatisfy(call => call.Should().Throw<ArgumentException>().WithMessage("*`log` is a System.IO.MemoryStream*"));
        await StillWorksAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unshippable_first_item_is_refused_at_the_call_and_a_later_one_fails_alone()
    {
        Action first = () => Pool.MapAsync(Describe, new object[] { typeof(int), 1 });
        first.Should().Throw<ArgumentException>().WithParameterName("items").WithMessage("The first item (a RuntimeType)*");

        Outcome<string>[] outcomes = await Pool.MapOutcomesAsync(Describe, new object[] { 1, "two", typeof(int), 4.0 }, chunkSize: 1).Within();

        outcomes.Select(o => o.Succeeded).Should().Equal(true, true, false, true);
        outcomes[2].Exception.Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("Item 2 (a System.RuntimeType)");

        static string Describe(object value) => value.ToString()!;
    }

    /// <summary>
    /// loky and pebble users lose work to tasks that return before they end. An async void method does: the worker would
    /// report it done at its first await and a later exception would crash the worker, blamed on another task.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task An_async_void_method_is_refused_at_the_call_and_told_to_return_a_Task()
    {
        Action map = () => Pool.Map(WriteLaterAsync, new[] { 1 });
        Action apply = () => Pool.ApplyAsync(WriteLaterAsync, 1);
        Action<int> lambda = async x => await Task.Delay(x);
        Action viaLambda = () => Pool.Map(lambda, new[] { 1 });

        foreach (Action refused in new[] { map, apply, viaLambda })
        {
            refused.Should().Throw<ArgumentException>().WithParameterName("fn")
                .WithMessage("fn (*) is an async void method*cannot tell when it ends or whether it failed*Declare it async Task*");
        }

        await StillWorksAsync();
    }

    [Fact]
    public void An_async_void_initializer_is_refused_when_the_pool_is_made()
    {
        Action make = () => new ProcessPool(new ProcessPoolOptions { Workers = 1 }.WithInitializer(WriteLaterAsync, 1)).Dispose();

        make.Should().Throw<ArgumentException>().WithParameterName("initializer").WithMessage("*is an async void method*");
    }

    private static async void WriteLaterAsync(int delay) => await Task.Delay(delay);

    private async Task StillWorksAsync() =>
        (await Pool.MapAsync(Functions.Increment, new[] { 1 }).Within()).Should().Equal(2);
}
