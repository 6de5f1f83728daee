using Microsoft.Win32.SafeHandles;
using Nacelle.Monitor.Logging;

namespace Nacelle.Monitor.Stdio;

/// <summary>A tty container's console: the spawn helper allocates the pty inside the container (its /dev/pts) and hands
/// the master to the monitor, which logs everything read from it as stdout.</summary>
internal static class TerminalOutput
{
    /// <summary>
    /// Drains the pty master until the container side is gone: into the log, or nowhere when there is no log (the
    /// container would block once the pty's buffer fills).
    /// </summary>
    public static async Task PumpAsync(CriLogWriter? log, SafeFileHandle master)
    {
        // bufferSize 0: every read goes straight to the pty. Reads end with EIO once the last slave fd closes.
        var stream = new FileStream(master, FileAccess.Read, bufferSize: 0);
        await using (stream.ConfigureAwait(false))
        {
            if (log is not null)
            {
                await CriLogPump.RunContainerAsync(log, stream, null).ConfigureAwait(false);
                return;
            }

            try
            {
                await stream.CopyToAsync(Stream.Null).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // EIO: the container side of the pty is gone
            }
        }
    }
}
