namespace Pool.Tests;

/// <summary>What the integration tests ship to workers: static methods of this test assembly.</summary>
public static class Functions
{
    public static int Square(int x) => x * x;

    public static int Increment(int x) => x + 1;

    public static int ProcessId(int _) => Environment.ProcessId;

    public static int ProcessIdOfCaller() => Environment.ProcessId;

    public static string Concat(string a, int b) => a + b;

    public static int Add3(int a, int b, int c) => a + b + c;

    public static double Add4(double a, double b, double c, double d) => a + b + c + d;

    /// <summary>Fails on multiples of 97 and on 499 and 500: failures at the start, middle and end of a worker's runs of tiny tasks.</summary>
    public static long FailSometimes(int x) => x % 97 == 0 || x is 499 or 500 ? throw new InvalidOperationException($"no {x}") : x * 3L;

    public static int NotNull(object? value) => value is null ? 0 : 1;

    public static int FailOnSeven(int x) => x == 7 ? throw new ArgumentException($"seven is not allowed (got {x})", nameof(x)) : x;

    public static int FailWithInner(int x) =>
        throw new InvalidOperationException("outer", new FormatException("inner cause"));

    /// <summary>Registers a handler for the process's exit that writes <c>pid.exit</c> in <paramref name="folder"/>; returns the pid.</summary>
    public static int WriteFileAtExit(string folder)
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.WriteAllText(Path.Combine(folder, $"{Environment.ProcessId}.exit"), "");
        Thread.Sleep(100);
        return Environment.ProcessId;
    }

    public static int Sleep(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return milliseconds;
    }

    /// <summary>Waits (polling every millisecond, ignoring any timeout: it takes no token) until the file exists, then returns its pid.</summary>
    public static int WaitForFile(string path)
    {
        while (!File.Exists(path))
        {
            Thread.Sleep(1);
        }

        return Environment.ProcessId;
    }

    /// <summary>Says so on stdout (the test waits for the line), then sleeps.</summary>
    public static int AnnounceAndSleep(int milliseconds)
    {
        Console.WriteLine($"sleeping {milliseconds} ms");
        Console.Out.Flush();
        Thread.Sleep(milliseconds);
        return milliseconds;
    }

    private static string? _initialized;

    /// <summary>An initializer: remembers its argument in this worker.</summary>
    public static void Remember(string value) => _initialized = $"{value} in {Environment.ProcessId}";

    /// <summary>An initializer that always throws.</summary>
    public static void FailToInitialize(string reason) => throw new InvalidOperationException($"cannot initialize: {reason}");

    /// <summary>An initializer that never returns.</summary>
    public static void HangInInitializer() => Thread.Sleep(Timeout.Infinite);

    /// <summary>An initializer that never returns in the first worker to run it (the one that creates <paramref name="marker"/>), and returns at once in the others.</summary>
    public static void HangInFirstWorker(string marker)
    {
        try
        {
            using (new FileStream(marker, FileMode.CreateNew))
            {
            }
        }
        catch (IOException)
        {
            // Another worker created it first: this one initializes.
            return;
        }

        Thread.Sleep(Timeout.Infinite);
    }

    public static int ValueOf(SlowToDecode value) => value.Value;

    /// <summary>Sleeps <see cref="SlowToDecode.Value"/> milliseconds (after its slow decoding) and returns it.</summary>
    public static int SleepFor(SlowToDecode value) => Sleep(value.Value);

    /// <summary>An initializer whose argument cannot travel.</summary>
    /// <summary>An initializer that takes a large array (it travels inline in the Init frame, not as a block).</summary>
    public static void RememberSum(double[] values) => _initialized = $"sum {values.Sum()}";

    public static void RememberStream(Stream stream) => _initialized = stream.ToString();

    /// <summary>What the initializer left in this worker.</summary>
    public static string? Remembered(int _) => _initialized;

    /// <summary>Starts <c>sleep</c> as a child process, says its pid on stdout, and waits for it.</summary>
    public static int StartChildAndWait(int seconds)
    {
        using var child = System.Diagnostics.Process.Start("sleep", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Console.WriteLine($"child {child.Id}");
        Console.Out.Flush();
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>Writes lines to stdout and stderr, including one that looks like a frame, then returns its input.</summary>
    public static int Chatty(int x)
    {
        Console.WriteLine($"out {x}");
        Console.Error.WriteLine($"err {x}");
        Console.Write("\u0005\0\0\0\u0007not a frame\n");
        Console.Out.Flush();
        return x;
    }

    /// <summary>Writes <paramref name="megabytes"/> MB to stdout or stderr without a newline, then one short line.</summary>
    public static int WriteWithoutNewline(int megabytes, bool toError)
    {
        using Stream stream = toError ? Console.OpenStandardError() : Console.OpenStandardOutput();
        byte[] block = new byte[1 << 20];
        Array.Fill(block, (byte)'x');
        for (int i = 0; i < megabytes; i++)
        {
            stream.Write(block);
        }

        stream.Write("\nend\n"u8);
        return megabytes;
    }

    /// <summary>A byte array of <paramref name="megabytes"/> MB (one over 1 GiB does not fit a frame).</summary>
    public static byte[] Bytes(int megabytes) => new byte[(long)megabytes << 20];

    /// <summary>Writes a line of <paramref name="megabytes"/> MB to stderr, then fails fast.</summary>
    public static int LongErrorLineThenFailFast(int megabytes)
    {
        WriteWithoutNewline(megabytes, toError: true);
        Environment.FailFast("after a long line");
        return 0;
    }

    /// <summary>Runs a pool of its own inside a worker: nested pools work as in loky.</summary>
    public static int[] NestedSquares(int count)
    {
        using var inner = new ProcessPool(new ProcessPoolOptions { Workers = 1, WorkerOutput = _ => { } });
        return inner.Map(Square, Enumerable.Range(0, count));
    }

    /// <summary>Sleeps until its token is cancelled, then ends as cancelled.</summary>
    public static int SleepCooperatively(int milliseconds, CancellationToken cancellationToken)
    {
        cancellationToken.WaitHandle.WaitOne(milliseconds);
        cancellationToken.ThrowIfCancellationRequested();
        return milliseconds;
    }

    /// <summary>Takes a token and ignores it.</summary>
    public static int IgnoreToken(int milliseconds, CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        Thread.Sleep(milliseconds);
        return milliseconds;
    }

    /// <summary>Sleeps, then says which process ran it.</summary>
    public static int ProcessIdAfter(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return Environment.ProcessId;
    }

    public static Point Move(Point p) => p with { X = p.X + 1, Y = p.Y * 2 };

    public static (int, string) Swap((string, int) pair) => (pair.Item2, pair.Item1);

    public static double[] Doubled(double[] values) => [.. values.Select(v => v * 2)];

    public static int Length(byte[] bytes) => bytes.Length;

    public static int ProcessIdOf(byte[] bytes) => bytes.Length > 0 ? Environment.ProcessId : -1;

    public static int ProcessIdOfText(string text) => text.Length > 0 ? Environment.ProcessId : -1;

    public static int SayStartedThenSleep(int milliseconds)
    {
        Console.WriteLine("started");
        Thread.Sleep(milliseconds);
        return 0;
    }

    public static double[]? DoubledOrNull(double[]? values) => values is null ? null : Doubled(values);

    /// <summary>The array's length and its first and last bytes, which the tests fill with the item's index.</summary>
    public static (int Length, byte First, byte Last) Ends(byte[] bytes) => (bytes.Length, bytes[0], bytes[^1]);

    public static string Describe(double[] doubles, Guid[] guids, DayOfWeek[] days) =>
        $"{doubles.Length}:{doubles.Sum()}|{guids.Length}:{guids[^1]}|{days.Length}:{days.Count(d => d == DayOfWeek.Friday)}";

    private static readonly int[] SharedBuffer = new int[40_000];

    /// <summary>Returns the same array every time, refilled: what was sent for one task must not change with the next.</summary>
    public static int[] FilledSharedBuffer(int value)
    {
        Array.Fill(SharedBuffer, value);
        return SharedBuffer;
    }

    public static double NotANumber(double x) => x / 0.0 * 0.0;

    public static string? Echo(string? text) => text;

    public static List<int> Range(int count) => [.. Enumerable.Range(0, count)];

    public static Dictionary<string, int> Count(string[] words) => words.GroupBy(w => w).ToDictionary(g => g.Key, g => g.Count());
}

public sealed record Point(double X, double Y);

/// <summary>
/// A value whose decoding is slow in a worker (one started with <see cref="InWorker"/> set): it takes
/// <see cref="DecodeMilliseconds"/>, or never returns when <see cref="Stuck"/> is true (saying so on stdout first). A
/// stand-in for an argument type whose constructor or serializer callback is slow or hangs.
/// </summary>
public sealed class SlowToDecode
{
    public const string InWorker = "POOL_TESTS_SLOW_DECODING";

    private static bool IsWorker => Environment.GetEnvironmentVariable(InWorker) == "1";

    private bool _stuck;
    private int _decodeMilliseconds;

    public int Value { get; set; }

    public int DecodeMilliseconds
    {
        get => _decodeMilliseconds;
        set
        {
            if (IsWorker)
            {
                Thread.Sleep(value);
            }

            _decodeMilliseconds = value;
        }
    }

    public bool Stuck
    {
        get => _stuck;
        set
        {
            if (value && IsWorker)
            {
                Console.WriteLine("decoding a stuck argument");
                Console.Out.Flush();
                Thread.Sleep(Timeout.Infinite);
            }

            _stuck = value;
        }
    }
}
