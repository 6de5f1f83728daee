using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;

namespace Nacelle.Monitor.Stdio;

/// <summary>Non-owning handles of an anonymous pipe's two ends (the pipe stream keeps ownership).</summary>
internal static class PipeEnds
{
    /// <summary>The end a child process writes to (given to the spawn as its stdout or stderr).</summary>
    public static SafeFileHandle WriteEnd(AnonymousPipeServerStream pipe) => new(pipe.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false);

    /// <summary>The end the monitor reads.</summary>
    public static SafeFileHandle ReadEnd(AnonymousPipeServerStream pipe) => new(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false);
}
