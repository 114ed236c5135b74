namespace Pool;

/// <summary>
/// How one task ended: with its value or with an exception. Returned by <c>MapOutcomes</c> and
/// <c>ImapOutcomes</c>, where one failure must not hide the others.
/// </summary>
/// <typeparam name="T">The function's result type.</typeparam>
public readonly record struct Outcome<T>
{
    internal Outcome(long index, T value)
    {
        Index = index;
        Value = value;
    }

    internal Outcome(long index, Exception exception)
    {
        Index = index;
        Exception = exception;
    }

    /// <summary>The same outcome at another position (a <c>Run</c>'s call order).</summary>
    internal Outcome<T> WithIndex(long index) => Exception is { } error ? new(index, error) : new(index, Value!);

    /// <summary>The position of the task in the call's input.</summary>
    public long Index { get; }

    /// <summary>The value, when the task succeeded; else the default of <typeparamref name="T"/>.</summary>
    public T? Value { get; }

    /// <summary>The exception the task ended with, or null.</summary>
    public Exception? Exception { get; }

    /// <summary>Whether the task returned a value.</summary>
    public bool Succeeded => Exception is null;

    /// <summary>The value, or throws the task's exception.</summary>
    public T GetValueOrThrow() => Exception is null ? Value! : throw Exception;
}
