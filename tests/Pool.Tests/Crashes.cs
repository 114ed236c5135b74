using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pool.Tests;

/// <summary>Ways for a worker process to end in the middle of a task, for real.</summary>
public enum CrashKind
{
    /// <summary>A native segfault: libc's strlen(NULL) through P/Invoke.</summary>
    Segfault = -1,

    /// <summary><see cref="Environment.FailFast(string)"/>.</summary>
    FailFast = -2,

    /// <summary>Unbounded recursion.</summary>
    StackOverflow = -3,

    /// <summary><see cref="Environment.Exit(int)"/> with 1.</summary>
    Exit1 = -4,

    /// <summary><see cref="Environment.Exit(int)"/> with 0: a worker that ends "successfully" while it owns work.</summary>
    Exit0 = -5,

    /// <summary>The process kills itself with SIGKILL, as an OOM killer or a user would.</summary>
    SigKill = -6,
}

/// <summary>Shipped functions that crash their worker on demand: a negative input is a <see cref="CrashKind"/>.</summary>
public static partial class Crashes
{
    /// <summary>Returns 2x, or ends the process as <paramref name="x"/> (a negative <see cref="CrashKind"/>) says.</summary>
    public static int DoubleOrCrash(int x)
    {
        if (x >= 0)
        {
            return 2 * x;
        }

        Crash((CrashKind)x);
        return 0;
    }

    /// <summary>The length; a one-byte array first sleeps a little then exits with code 3, while more arrays are on their way.</summary>
    public static int LengthOrExit(byte[] bytes)
    {
        if (bytes.Length == 1)
        {
            Thread.Sleep(100);
            Environment.Exit(3);
        }

        return bytes.Length;
    }

    public static void Crash(CrashKind kind)
    {
        switch (kind)
        {
            case CrashKind.Segfault:
                _ = StrLen(0);
                break;
            case CrashKind.FailFast:
                Environment.FailFast("ProcessPool test fail-fast");
                break;
            case CrashKind.StackOverflow:
                _ = Recurse(0);
                break;
            case CrashKind.Exit1:
                Environment.Exit(1);
                break;
            case CrashKind.Exit0:
                Environment.Exit(0);
                break;
            case CrashKind.SigKill:
                Process.GetCurrentProcess().Kill();
                Thread.Sleep(Timeout.Infinite);
                break;
        }
    }

    /// <summary>The exit code (or 128 + signal) and signal name a worker ends with.</summary>
    public static (int ExitCode, string? Signal) ExpectedExit(CrashKind kind) => kind switch
    {
        CrashKind.Segfault => (139, "SIGSEGV"),
        CrashKind.FailFast => (134, "SIGABRT"),
        CrashKind.StackOverflow => (134, "SIGABRT"),
        CrashKind.Exit1 => (1, null),
        CrashKind.Exit0 => (0, null),
        CrashKind.SigKill => (137, "SIGKILL"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static int Recurse(int depth)
    {
        Span<byte> frame = stackalloc byte[512];
        frame[depth % 512] = (byte)depth;
        return Recurse(depth + 1) + frame[0];
    }

    [LibraryImport("libc", EntryPoint = "strlen")]
    private static partial nint StrLen(nint text);
}

/// <summary>Shipped functions that end a task in every way a task can end.</summary>
public static class Endings
{
    /// <summary>What <see cref="DoubleOrEnd"/> does with an input that throws an ordinary exception.</summary>
    public const int Throw = -100;

    /// <summary>What <see cref="DoubleOrEnd"/> does with an input that runs past any short timeout.</summary>
    public const int Hang = -101;

    /// <summary>Returns 2x; <see cref="Throw"/> throws, <see cref="Hang"/> sleeps 30 s, another negative input crashes its worker as a <see cref="CrashKind"/>.</summary>
    public static int DoubleOrEnd(int x)
    {
        switch (x)
        {
            case >= 0:
                return 2 * x;
            case Throw:
                throw new InvalidOperationException($"task input {x} throws");
            case Hang:
                Thread.Sleep(TimeSpan.FromSeconds(30));
                return 0;
            default:
                Crashes.Crash((CrashKind)x);
                return 0;
        }
    }
}
