using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;

namespace Pool.Contracts;

/// <summary>
/// Thirty-two bytes of memory shared by a worker and its host: which task the worker is running now, and
/// since when; and which task's arguments its reader thread is decoding, and since when (user code runs there
/// too: a constructor or a serializer callback of the argument's type). The worker writes them before each task
/// (one store, no system call); the host reads them only when the worker has died, to know which task killed it,
/// and when a deadline may have passed. Results are sent in batches, so without it a crash could not be pinned
/// on one task of a chunk.
/// </summary>
internal sealed unsafe class ProgressCell : IDisposable
{
    /// <summary>The value of the current slot between tasks.</summary>
    public const long Idle = -1;

    private const int Size = 4096;

    // The slots, each a long: the running task (packed) and its start; the task being decoded and its start.
    private const int Running = 0;
    private const int RunningSince = 1;
    private const int Decoding = 2;
    private const int DecodingSince = 3;
    private const int Slots = 4;

    private readonly long* _cell;
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly long[]? _local;
    private int _disposed;

    private ProgressCell(long* cell, MemoryMappedFile? file, MemoryMappedViewAccessor? view, long[]? local = null)
    {
        _cell = cell;
        _file = file;
        _view = view;
        _local = local;
        _cell[Running] = Idle;
        _cell[Decoding] = Idle;
    }

    /// <summary>The prefix of every cell file of the pools of process <paramref name="processId"/>.</summary>
    public static string FilePrefix(int processId) => "pp-" + processId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-";

    /// <summary>Where cell files live: /dev/shm when there is one (memory, never written to a disk), else the temp directory.</summary>
    public static string Directory { get; } = System.IO.Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();

    /// <summary>
    /// Host side: a new cell in a file that the worker opens (and deletes), named after this process
    /// (<see cref="FilePrefix"/>) so that a file left by a host that was killed in the moment between creating it and
    /// its worker opening it can be told apart and removed. Readable and writable by this user only, whatever the
    /// umask: it is created with mode 0600, which a umask can only narrow.
    /// </summary>
    public static ProgressCell CreateShared(out string path)
    {
        path = Path.Combine(Directory, FilePrefix(Environment.ProcessId) + Guid.NewGuid().ToString("N") + ".cell");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite, PreallocationSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        var stream = new FileStream(path, options);
        try
        {
            stream.SetLength(Size);
            var file = MemoryMappedFile.CreateFromFile(stream, null, Size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            return Map(file);
        }
        catch
        {
            stream.Dispose();
            TryDelete(path);
            throw;
        }
    }

    /// <summary>Worker side: maps the host's cell and deletes its file, which lives on while mapped.</summary>
    public static ProgressCell OpenShared(string path)
    {
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        ProgressCell cell = Map(file);
        TryDelete(path);
        return cell;
    }

    /// <summary>A cell in this process's memory, for a worker that runs in-process.</summary>
    public static ProgressCell CreateLocal()
    {
        // Pinned and owned by the cell: a thread still running user code can never write to freed memory.
        long[] local = GC.AllocateArray<long>(Slots, pinned: true);
        return new ProgressCell((long*)Unsafe.AsPointer(ref local[0]), null, null, local);
    }

    /// <summary>Deletes a cell file that no worker opened.</summary>
    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Already gone, or never created: nothing left to clean.
        }
        catch (UnauthorizedAccessException)
        {
            // Same: a cell we cannot delete is one we did not create.
        }
    }

    /// <summary>Worker: task <paramref name="index"/> of chunk <paramref name="chunkId"/> starts now.</summary>
    public void Enter(int chunkId, int index)
    {
        BeforeChange?.Invoke(Volatile.Read(ref _cell[Running]));
        Volatile.Write(ref _cell[Running], Pack(chunkId, index));
    }

    /// <summary>
    /// Worker on another machine (<see cref="ProgressMessage"/>): called on the executor's thread with the value the cell
    /// holds just before it changes, so that a task the host was told is running is reported over before the next one
    /// starts. Null on a local link, where the host reads the cell itself.
    /// </summary>
    public Action<long>? BeforeChange { get; set; }

    /// <summary>Worker: as <see cref="Enter"/>, and records the start time for the host's deadline check.</summary>
    public void EnterTimed(int chunkId, int index)
    {
        BeforeChange?.Invoke(Volatile.Read(ref _cell[Running]));
        Volatile.Write(ref _cell[RunningSince], Stopwatch.GetTimestamp());
        Volatile.Write(ref _cell[Running], Pack(chunkId, index));
    }

    /// <summary>
    /// Worker running several tasks at once: shows task <paramref name="index"/> of chunk
    /// <paramref name="chunkId"/>, which started at <paramref name="startedAt"/> (the oldest task still running).
    /// </summary>
    public void Show(int chunkId, int index, long startedAt)
    {
        BeforeChange?.Invoke(Volatile.Read(ref _cell[Running]));
        Volatile.Write(ref _cell[RunningSince], startedAt);
        Volatile.Write(ref _cell[Running], Pack(chunkId, index));
    }

    /// <summary>Worker: no task is running.</summary>
    public void Leave()
    {
        BeforeChange?.Invoke(Volatile.Read(ref _cell[Running]));
        Volatile.Write(ref _cell[Running], Idle);
    }

    /// <summary>
    /// Worker's reader thread: decoding the arguments of task <paramref name="index"/> of chunk <paramref name="chunkId"/>
    /// starts now. With <paramref name="since"/> (a <see cref="Stopwatch"/> time, for a chunk with a deadline) the host
    /// counts the decoding against the task's timeout; with 0 it only knows the task, for a crash or a cancellation.
    /// </summary>
    public void EnterDecoding(int chunkId, int index, long since)
    {
        if (since != 0)
        {
            Volatile.Write(ref _cell[DecodingSince], since);
        }

        Volatile.Write(ref _cell[Decoding], Pack(chunkId, index));
    }

    /// <summary>Worker's reader thread: no argument is being decoded.</summary>
    public void LeaveDecoding() => Volatile.Write(ref _cell[Decoding], Idle);

    /// <summary>The cell's value (<see cref="Idle"/>, or a task packed as <see cref="ProgressMessage.Position"/> carries it) and its start time.</summary>
    public long Peek(out long startedAt) => Peek(Running, out startedAt);

    /// <summary>The decoding slot's value (<see cref="Idle"/>, or a task packed) and its start time.</summary>
    public long PeekDecoding(out long since) => Peek(Decoding, out since);

    /// <summary>A slot and the time after it, read as a pair (the value again after the time, until it did not change).</summary>
    private long Peek(int slot, out long since)
    {
        while (true)
        {
            long first = Volatile.Read(ref _cell[slot]);
            since = Volatile.Read(ref _cell[slot + 1]);
            if (first == Volatile.Read(ref _cell[slot]))
            {
                return first;
            }
        }
    }

    /// <summary>Host of a worker on another machine: what its last <see cref="ProgressMessage"/> said, with the start times in this machine's clock.</summary>
    public void Set(long position, long startedAt, long decoding, long decodingSince)
    {
        Volatile.Write(ref _cell[RunningSince], startedAt);
        Volatile.Write(ref _cell[Running], position);
        Volatile.Write(ref _cell[DecodingSince], decodingSince);
        Volatile.Write(ref _cell[Decoding], decoding);
    }

    /// <summary>Host: the task running now and the <see cref="Stopwatch"/> time it started (if timed).</summary>
    /// <returns><see langword="false"/> when the worker is between tasks.</returns>
    public bool TryRead(out int chunkId, out int index, out long startedAt) => TryRead(Running, out chunkId, out index, out startedAt);

    /// <summary>Host of a local worker: the task whose arguments are being decoded and the time that began (if timed).</summary>
    /// <returns><see langword="false"/> when no argument is being decoded.</returns>
    public bool TryReadDecoding(out int chunkId, out int index, out long startedAt) => TryRead(Decoding, out chunkId, out index, out startedAt);

    private bool TryRead(int slot, out int chunkId, out int index, out long startedAt)
    {
        long value = Peek(slot, out startedAt);
        chunkId = (int)(value >> 32);
        index = (int)value;
        return value != Idle;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_view is null)
        {
            return;
        }

        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file!.Dispose();
    }

    private static long Pack(int chunkId, int index) => ((long)chunkId << 32) | (uint)index;

    private static ProgressCell Map(MemoryMappedFile file)
    {
        MemoryMappedViewAccessor view = file.CreateViewAccessor(0, Slots * sizeof(long), MemoryMappedFileAccess.ReadWrite);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        return new ProgressCell((long*)(pointer + view.PointerOffset), file, view);
    }
}
