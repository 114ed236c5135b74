using System.Collections.ObjectModel;
using System.Reflection;
using System.Reflection.Emit;
using Pool.Contracts;
using Pool.Internal;

namespace Pool.Tests.Integration;

/// <summary>An exception with state given to its constructor.</summary>
public sealed class CodedException(string message, int code) : Exception(message)
{
    public int Code => code;
}

/// <summary>An exception with settable state, an enum among it, and an HResult of its own.</summary>
public sealed class DetailedException : Exception
{
    public DetailedException(string message)
        : base(message) => HResult = unchecked((int)0x80040123);

    public string? Detail { get; set; }

    public DayOfWeek Day { get; set; }
}

/// <summary>An exception the host cannot call: its one constructor takes state that does not travel.</summary>
public sealed class UnbuildableException(Stream stream) : Exception("made from a stream")
{
    public long Length => stream.Length;
}

/// <summary>An exception type that is not public.</summary>
internal sealed class HiddenException(string message) : Exception(message);

/// <summary>Shipped functions that throw the exceptions above, and framework ones.</summary>
public static class Throwers
{
    public static int Coded(int code) => throw new CodedException($"failed with {code}", code);

    public static int Detailed(int _) => throw new DetailedException("detailed") { Detail = "the detail", Day = DayOfWeek.Friday, Data = { ["attempt"] = 3, ["host"] = "w1", ["skipped"] = new object() } };

    public static int MissingKey(string key) => new Dictionary<string, int>()[key];

    public static int BadArgument(int x) => throw new ArgumentOutOfRangeException(nameof(x), x, "must be small");

    public static int Aggregate(int _) => throw new AggregateException("several", new FormatException("one"), new KeyNotFoundException("two"));

    public static int Unbuildable(int _) => throw new UnbuildableException(new MemoryStream(new byte[3]));

    public static int Hidden(int _) => throw new HiddenException("hidden");

    /// <summary>Throws an exception whose type exists only in the worker (emitted there at run time).</summary>
    public static int OnlyInWorker(int _)
    {
        AssemblyBuilder assembly = AssemblyBuilder.DefineDynamicAssembly(new AssemblyName("PoolTestsWorkerOnly"), AssemblyBuilderAccess.Run);
        TypeBuilder type = assembly.DefineDynamicModule("m").DefineType("WorkerOnly.GoneException", TypeAttributes.Public | TypeAttributes.Sealed, typeof(Exception));
        type.DefineDefaultConstructor(MethodAttributes.Public);
        throw (Exception)Activator.CreateInstance(type.CreateType())!;
    }
}

/// <summary>A task's exception arrives as its own type, with its state and the worker's stack, wherever the host can rebuild it.</summary>
public sealed class ExceptionTypeTests(PoolFixture fixture) : IClassFixture<PoolFixture>
{
    private ProcessPool Pool => fixture.Pool;

    [Fact(Timeout = 60_000)]
    public async Task A_framework_exception_can_be_caught_by_its_own_type_as_Pythons_KeyError_can()
    {
        Func<Task> map = () => Pool.MapAsync(Throwers.MissingKey, ["a"]);

        KeyNotFoundException error = (await map.Should().ThrowAsync<KeyNotFoundException>()).Which;
        error.Message.Should().Contain("'a'");
        error.StackTrace.Should().Contain(nameof(Throwers.MissingKey), "the worker's frames are attached as the remote stack");
        error.ToString().Should().Contain("End of stack trace from previous location");
    }

    [Fact(Timeout = 60_000)]
    public async Task The_worker_stack_shows_file_and_line_of_the_function_that_threw()
    {
        Func<Task> apply = () => Pool.ApplyAsync(Functions.FailOnSeven, 7).Task;

        ArgumentException error = (await apply.Should().ThrowAsync<ArgumentException>()).Which;
        error.ParamName.Should().Be("x");
        error.Message.Should().Be("seven is not allowed (got 7) (Parameter 'x')");
        error.ToString().Should().MatchRegex(@"FailOnSeven.* in .*Functions\.cs:line \d+");
    }

    [Fact(Timeout = 60_000)]
    public async Task Constructor_state_settable_state_data_and_hresult_travel()
    {
        Func<Task> coded = () => Pool.ApplyAsync(Throwers.Coded, 42).Task;
        CodedException code = (await coded.Should().ThrowAsync<CodedException>()).Which;
        code.Code.Should().Be(42);
        code.Message.Should().Be("failed with 42");

        Func<Task> detailed = () => Pool.ApplyAsync(Throwers.Detailed, 0).Task;
        DetailedException detail = (await detailed.Should().ThrowAsync<DetailedException>()).Which;
        detail.Detail.Should().Be("the detail");
        detail.Day.Should().Be(DayOfWeek.Friday);
        detail.HResult.Should().Be(unchecked((int)0x80040123));
        detail.Data["attempt"].Should().Be(3);
        detail.Data["host"].Should().Be("w1");
        detail.Data.Contains("skipped").Should().BeFalse("only simple values travel");
    }

    [Fact(Timeout = 60_000)]
    public async Task Inner_exceptions_and_aggregates_arrive_as_their_own_types()
    {
        Func<Task> inner = () => Pool.ApplyAsync(Functions.FailWithInner, 1).Task;
        InvalidOperationException outer = (await inner.Should().ThrowAsync<InvalidOperationException>()).Which;
        outer.InnerException.Should().BeOfType<FormatException>().Which.Message.Should().Be("inner cause");

        Func<Task> aggregate = () => Pool.ApplyAsync(Throwers.Aggregate, 1).Task;
        AggregateException all = (await aggregate.Should().ThrowAsync<AggregateException>()).Which;
        all.InnerExceptions.Select(e => e.GetType()).Should().Equal(typeof(FormatException), typeof(KeyNotFoundException));
        all.Message.Should().StartWith("several");

        Func<Task> range = () => Pool.ApplyAsync(Throwers.BadArgument, 5).Task;
        ArgumentOutOfRangeException bad = (await range.Should().ThrowAsync<ArgumentOutOfRangeException>()).Which;
        bad.ParamName.Should().Be("x");
        bad.ActualValue.Should().Be(5);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_exception_the_host_cannot_rebuild_arrives_as_a_RemoteException_that_says_why()
    {
        Outcome<int>[] outcomes = await Pool.MapOutcomesAsync(Throwers.Unbuildable, [0]).Within();
        RemoteException unbuildable = outcomes[0].Exception.Should().BeOfType<RemoteException>().Which;
        unbuildable.RemoteType.Should().Be(typeof(UnbuildableException).FullName);
        unbuildable.Message.Should().Contain("no public constructor");
        unbuildable.Is<UnbuildableException>().Should().BeTrue();

        outcomes = await Pool.MapOutcomesAsync(Throwers.Hidden, [0]).Within();
        outcomes[0].Exception.Should().BeOfType<RemoteException>().Which.NotRebuiltBecause.Should().Contain("not public");

        outcomes = await Pool.MapOutcomesAsync(Throwers.OnlyInWorker, [0]).Within();
        RemoteException gone = outcomes[0].Exception.Should().BeOfType<RemoteException>().Which;
        gone.RemoteType.Should().Be("WorkerOnly.GoneException");
        gone.NotRebuiltBecause.Should().Contain("cannot load");
    }

    [Fact(Timeout = 60_000)]
    public async Task In_process_mode_rebuilds_exceptions_as_their_own_types_too()
    {
        await using ProcessPool pool = await TestPools.StartAsync(options: new ProcessPoolOptions { InProcess = true });

        pool.Invoking(p => p.Apply(Throwers.Coded, 7)).Should().Throw<CodedException>().Which.Code.Should().Be(7);
        pool.Invoking(p => p.Map(Throwers.MissingKey, ["b"])).Should().Throw<KeyNotFoundException>();
        pool.Invoking(p => p.Apply(Throwers.Hidden, 0)).Should().Throw<RemoteException>();
    }

    [Theory]
    [InlineData("System.IO.FileInfo", "System.Private.CoreLib", "not a concrete exception type")]
    [InlineData("System.Exception", "System.Private.CoreLib", null)]
    [InlineData("System.Diagnostics.Process", "System.Diagnostics.Process", "not a concrete exception type")]
    [InlineData("Nowhere.Exception", "NoSuchAssembly", "cannot load")]
    [InlineData("System.Collections.Generic.List`1[[System.Int32]]", "System.Private.CoreLib", "generic")]
    [InlineData("System.IO.IOException", "../../etc/passwd", "cannot load")]
    public void Only_exception_types_the_host_loads_are_instantiated_from_what_the_wire_names(string type, string assembly, string? reason)
    {
        var error = new RemoteError(type, assembly, "from the wire", null, ReadOnlyCollection<RemoteError>.Empty);

        Exception rebuilt = ExceptionRebuilder.Rebuild(error, 0);

        if (reason is null)
        {
            rebuilt.GetType().FullName.Should().Be(type);
            rebuilt.Message.Should().Be("from the wire");
        }
        else
        {
            rebuilt.Should().BeOfType<RemoteException>().Which.NotRebuiltBecause.Should().Contain(reason);
        }
    }
}
