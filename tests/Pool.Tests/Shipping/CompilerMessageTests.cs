using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Pool.Tests.Shipping;

/// <summary>
/// What the compiler says to a user's code, compiled here with Roslyn against Pool.Host: the everyday shapes
/// (void functions, statement lambdas) compile, and a function of more parameters than the calls take is an
/// error that says what to do, not CS0411 naming an unrelated overload.
/// </summary>
public class CompilerMessageTests
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => Path.GetFileName(path).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(path) is "netstandard.dll" or "mscorlib.dll")
            .Select(path => MetadataReference.CreateFromFile(path)),
        MetadataReference.CreateFromFile(typeof(ProcessPool).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(PoolSerializer).Assembly.Location),
    ]);

    [Fact]
    public void Void_functions_and_statement_lambdas_compile_in_every_call_shape()
    {
        Compile("""
            static void ProcessFile(string path) { }
            static async Task SaveAsync(string path, CancellationToken ct) => await Task.Delay(1, ct);
            string[] files = ["a", "b"];
            pool.Map(ProcessFile, files);
            await pool.MapAsync(SaveAsync, files);
            pool.Apply(() => Console.WriteLine("hi"));
            pool.Apply((string p) => { File.Delete(p); }, "x");
            pool.StarMap((int a, int b) => { Console.WriteLine(a + b); }, new[] { (1, 2) });
            foreach (var _ in pool.Imap(ProcessFile, files)) { }
            Outcome<ValueTuple>[] outcomes = await pool.MapOutcomesAsync(ProcessFile, files);
            foreach (Outcome<ValueTuple> o in pool.ImapOutcomes(ProcessFile, files)) { }
            """).Should().BeEmpty();
    }

    [Fact]
    public void A_function_of_five_parameters_is_an_error_that_says_to_take_one_record_or_tuple()
    {
        string[] calls =
        [
            "pool.StarMap((int a, int b, int c, int d, int e) => a, new[] { (1, 2, 3, 4, 5) });",
            "pool.Apply((int a, int b, int c, int d, int e) => a, 1, 2, 3, 4, 5);",
            "await pool.ApplyAsync((int a, int b, int c, int d, int e) => a, 1, 2, 3, 4, 5);",
            "pool.Map((int a, int b, int c, int d, int e) => a, new[] { 1 }, new[] { 2 }, new[] { 3 }, new[] { 4 }, new[] { 5 });",
        ];

        foreach (string call in calls)
        {
            Diagnostic[] errors = Compile(call);

            errors.Should().ContainSingle(call).Which.Id.Should().Be("CS0619", call);
            errors[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture).Should()
                .Contain("up to 4 parameters", call).And.Contain("take one record or tuple", call);
        }
    }

    /// <summary>The errors of a top-level program that has a pool in <c>pool</c> and runs <paramref name="statements"/>.</summary>
    private static Diagnostic[] Compile(string statements)
    {
        string source = $$"""
            using System;
            using System.IO;
            using System.Threading;
            using System.Threading.Tasks;
            using Pool;

            using var pool = new ProcessPool(2);
            {{statements}}
            """;
        CSharpCompilation compilation = CSharpCompilation.Create(
            "Snippet",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Preview))],
            References.Value,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        return [.. compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)];
    }
}
