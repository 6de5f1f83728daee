namespace Nacelle.Monitor.Logging;

/// <summary>The stream a CRI log record came from; written as <c>stdout</c> or <c>stderr</c>.</summary>
public enum CriLogStream
{
    /// <summary>The container's standard output (also the only stream of a tty container).</summary>
    Stdout,
    /// <summary>The container's standard error.</summary>
    Stderr,
}
