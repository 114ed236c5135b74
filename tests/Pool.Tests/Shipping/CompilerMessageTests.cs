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

    [Fact]
    public void Every_csharp_block_of_the_README_quick_start_and_how_tos_compiles()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        string[] blocks = [.. CSharpBlocks(Section(readme, "## Quick start")), .. CSharpBlocks(Section(readme, "## How-tos"))];

        blocks.Should().HaveCountGreaterThanOrEqualTo(6);
        foreach (string block in blocks)
        {
            Compile(block).Select(d => d.ToString()).Should().BeEmpty(block);
        }
    }

    private static string Section(string readme, string heading)
    {
        int start = readme.IndexOf("\n" + heading + "\n", StringComparison.Ordinal);
        start.Should().BeGreaterThan(0, $"the README has a section {heading}");
        int end = readme.IndexOf("\n## ", start + heading.Length + 2, StringComparison.Ordinal);
        return end < 0 ? readme[start..] : readme[start..end];
    }

    private static IEnumerable<string> CSharpBlocks(string markdown)
    {
        string[] parts = markdown.Split("```");
        for (int i = 1; i < parts.Length; i += 2)
        {
            if (parts[i].StartsWith("csharp\n", StringComparison.Ordinal))
            {
                yield return parts[i]["csharp\n".Length..];
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ProcessPool.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No ProcessPool.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The errors of a top-level program that has a pool in <c>pool</c> and runs <paramref name="statements"/>.</summary>
    private static Diagnostic[] Compile(string statements)
    {
        // A block with its own `using Pool;` (the quick start) makes its own pool; the others get one in `pool`.
        string pool = statements.Contains("using Pool;", StringComparison.Ordinal) ? string.Empty : "using Pool;\nusing var pool = new ProcessPool(2);";
        string source = $$"""
            using System;
            using System.Collections.Generic;
            using System.IO;
            using System.Linq;
            using System.Threading;
            using System.Threading.Tasks;
            {{pool}}
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
