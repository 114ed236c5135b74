namespace Pool.Contracts;

/// <summary>The kind of a frame. Host to worker: <see cref="Init"/>, <see cref="Bind"/>, <see cref="Unbind"/>,
/// <see cref="Run"/>, <see cref="Cancel"/>. Worker to host: <see cref="Ready"/>, <see cref="Results"/>,
/// <see cref="Failed"/>, <see cref="InitFailed"/>. Both ways: <see cref="Block"/>.</summary>
internal enum MessageType : byte
{
    /// <summary>Worker to host, first frame: protocol version and process id.</summary>
    Ready = 1,

    /// <summary>Host to worker, first frame: the serializer and the initializer.</summary>
    Init = 2,

    /// <summary>Host to worker: a function reference and the small id that names it afterwards.</summary>
    Bind = 3,

    /// <summary>Host to worker: forget a function id (per-call closures).</summary>
    Unbind = 4,

    /// <summary>Host to worker: a chunk of tasks for one function, with their arguments.</summary>
    Run = 5,

    /// <summary>Host to worker: cancel one running task (a deadline), or the rest of a chunk (a cancelled call).</summary>
    Cancel = 6,

    /// <summary>Worker to host: the values of consecutive tasks of one chunk.</summary>
    Results = 7,

    /// <summary>Worker to host: consecutive tasks of one chunk failed, or were cancelled.</summary>
    Failed = 8,

    /// <summary>Worker to host: the initializer threw; the worker exits after this frame.</summary>
    InitFailed = 9,

    /// <summary>Worker to host: the initializer ran.</summary>
    Initialized = 10,

    /// <summary>Either way: a large array of raw elements (a code for the element type, then its bytes), sent
    /// just before the frame with the value that refers to it; the reader keeps it for that frame's decoder.</summary>
    Block = 11,

    /// <summary>Worker to host, from workers on other machines only (<see cref="ProgressMessage"/>): the task it runs now,
    /// in place of the shared progress cell, and a heartbeat at least every second.</summary>
    Progress = 12,
}
