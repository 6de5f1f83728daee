namespace Nacelle.Monitor.Logging;

/// <summary>Settings of a <see cref="CriLogWriter"/>.</summary>
public sealed class CriLogWriterOptions
{
    /// <summary>containerd's default <c>max_container_log_line_size</c>: 16 KiB.</summary>
    public const int DefaultMaxLineSize = 16 * 1024;

    /// <summary>
    /// The longest content one record carries, in bytes. A longer line is split into <c>P</c> records of exactly this
    /// size followed by an <c>F</c> record with the rest (a line of exactly this size is one <c>F</c> record).
    /// </summary>
    public int MaxLineSize { get; init; } = DefaultMaxLineSize;

    /// <summary>The mode a newly created log file gets (subject to the umask); an existing file keeps its mode.</summary>
    public UnixFileMode FileMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>The clock that stamps records (tests pass a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
