using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Pool.Internal;

/// <summary>Why a value cannot go to a worker, and what to do instead; <see cref="Type"/> is the culprit.</summary>
internal sealed record UnshippableReason(Type Type, string Why, string Instead);

/// <summary>
/// Types whose values mean something only in this process (streams, tasks, delegates, pointers, handles,
/// locks, cancellation sources): a function that captures or holds one is refused at the call, before the
/// serializer is asked, with the reason. A type counts if it, its element type or one of its generic type
/// arguments is one of these (a <c>List&lt;Task&gt;</c> is refused too).
/// </summary>
internal static class Unshippable
{
    private const string CreateInWorker =
        "Create it inside the function, or once per worker with ProcessPoolOptions.WithInitializer, and keep it in a static field there.";

    private static readonly string[] HandleTypeNames =
    [
        "System.Net.Sockets.Socket", "System.Net.Sockets.TcpClient", "System.Net.Sockets.UdpClient",
        "System.Net.Http.HttpMessageInvoker", "System.Data.Common.DbConnection", "System.IO.FileSystemWatcher",
        "System.IO.MemoryMappedFiles.MemoryMappedFile", "System.IO.BinaryReader", "System.IO.BinaryWriter",
    ];

    private static readonly Type[] SynchronizationTypes =
    [
        typeof(Lock), typeof(SemaphoreSlim), typeof(ReaderWriterLockSlim), typeof(ManualResetEventSlim),
        typeof(CountdownEvent), typeof(Barrier), typeof(SpinLock),
    ];

    /// <summary>The reason <paramref name="type"/> cannot ship, or null if the serializer may try.</summary>
    public static UnshippableReason? Check(Type type) => Check(type, 0);

    private static UnshippableReason? Check(Type type, int depth)
    {
        if (Own(type) is { } reason)
        {
            return reason;
        }

        if (depth >= 4)
        {
            return null;
        }

        if (type.HasElementType && type.GetElementType() is { } element && Check(element, depth + 1) is { } inElement)
        {
            return inElement;
        }

        if (type.IsGenericType)
        {
            foreach (Type argument in type.GetGenericArguments())
            {
                if (Check(argument, depth + 1) is { } inArgument)
                {
                    return inArgument;
                }
            }
        }

        return null;
    }

    private static UnshippableReason? Own(Type type)
    {
        if (type.IsPointer || type.IsFunctionPointer || type.IsByRef || type == typeof(Pointer) || type == typeof(IntPtr) || type == typeof(UIntPtr))
        {
            return new(type, "a pointer or native handle is an address in this process's memory and means nothing in a worker",
                "Capture the data it points to (an array, a string, a struct) instead.");
        }

        if (typeof(Delegate).IsAssignableFrom(type))
        {
            return new(type, "a delegate is not shipped inside another function: only the call's own function travels, by reference",
                "Call the method it points to directly inside the function (a static method or local function goes along by name), or pass its result.");
        }

        if (typeof(Task).IsAssignableFrom(type) || type == typeof(ValueTask) || (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            return new(type, "a task is an operation running in this process", "Await it before the call and capture its result.");
        }

        if (typeof(Stream).IsAssignableFrom(type) || typeof(TextReader).IsAssignableFrom(type) || typeof(TextWriter).IsAssignableFrom(type))
        {
            return new(type, "a stream, reader or writer is open in this process only",
                "Capture the path or the bytes instead, and open the stream inside the function.");
        }

        if (typeof(CancellationTokenSource).IsAssignableFrom(type) || type == typeof(CancellationToken) || type == typeof(CancellationTokenRegistration))
        {
            return new(type, "cancellation belongs to the caller's process",
                "Take a CancellationToken as the function's last parameter: each task gets its own, cancelled with the call or at its timeout.");
        }

        if (typeof(SafeHandle).IsAssignableFrom(type) || typeof(CriticalHandle).IsAssignableFrom(type) || typeof(WaitHandle).IsAssignableFrom(type) ||
            typeof(Process).IsAssignableFrom(type) || typeof(Thread).IsAssignableFrom(type) || typeof(ITimer).IsAssignableFrom(type) ||
            IsNamedHandle(type))
        {
            return new(type, "it holds an operating-system resource (a handle, connection, thread or timer) of this process", CreateInWorker);
        }

        if (Array.IndexOf(SynchronizationTypes, type) >= 0)
        {
            return new(type, "a lock or signal synchronizes threads of this process, and a worker shares no memory with it",
                "Leave it out of what the function captures; a copy in a worker would lock nothing here.");
        }

        if (typeof(Random).IsAssignableFrom(type) || (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Lazy<>)) || type == typeof(System.Text.StringBuilder))
        {
            // Each would arrive changed and without an error (a fresh unseeded Random, a Lazy without its value, a
            // StringBuilder of NULs): the serializer sees none of their state.
            return new(type, "its state is private to it and the serializer would bring back a different one, without an error",
                "Capture what it holds instead: a seed (and create the Random inside the function), the Lazy's Value, the StringBuilder's ToString().");
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IAsyncEnumerable<>))
        {
            return new(type, "an asynchronous stream is produced lazily, inside the worker",
                "Return the items in a list or an array (for example await the stream's ToListAsync()).");
        }

        if (typeof(MemberInfo).IsAssignableFrom(type) || typeof(Assembly).IsAssignableFrom(type) || typeof(Module).IsAssignableFrom(type))
        {
            return new(type, "a reflection object describes this process's loaded code",
                "Capture its name (for a type, its AssemblyQualifiedName) and look it up inside the function.");
        }

        return null;
    }

    private static bool IsNamedHandle(Type type)
    {
        for (Type? t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            if (t.FullName is { } name && Array.IndexOf(HandleTypeNames, name) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
