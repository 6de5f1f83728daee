using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.ContainerCore.Runtime.Oci;

/// <summary>
/// The socket an external OCI runtime hands a terminal's pty master over (its <c>--console-socket</c>): a listening
/// unix socket in a directory of mode 0700 under the container's state directory. The runtime connects to it and sends
/// the master as SCM_RIGHTS (runc sends it from the container's init, before its create or exec returns); the master
/// is then the caller's, exactly like the one the built-in core's spawn helper sends.
/// <para>
/// A container's state directory is deeper than a unix socket address holds (sun_path: 108 bytes with its NUL; a pod
/// monitor's is about 180 characters), so the socket is bound through this process's descriptor of the directory
/// (<c>/proc/self/fd/N/name</c>) and the runtime, a child of this process running as the same user, is given
/// <c>/proc/&lt;pid&gt;/fd/N/name</c>: the same directory entry, in an address that always fits.
/// </para>
/// Everything waits on the fd reactor (no thread): accepting the runtime's connection and reading its message are
/// bounded by a deadline, so a runtime that never sends a master cannot hang the caller. Disposal closes the socket and
/// removes its directory entry.
/// </summary>
public sealed class OciConsoleSocket : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly SafeFileHandle _directory;
    private readonly SafeFileHandle _listener;

    private OciConsoleSocket(SafeFileHandle directory, SafeFileHandle listener, string path, string address)
    {
        _directory = directory;
        _listener = listener;
        Path = path;
        Address = address;
    }

    /// <summary>The socket's path in the file system (for the record: it may be longer than an address holds).</summary>
    public string Path { get; }

    /// <summary>What the runtime is given as <c>--console-socket</c>: the socket through this process's descriptor of its
    /// directory.</summary>
    public string Address { get; }

    /// <summary>Binds a new console socket in <paramref name="directory"/> (created with mode 0700 if it is not there).</summary>
    public static OciConsoleSocket Open(string directory)
    {
        Directory.CreateDirectory(directory, OwnerOnly);
        File.SetUnixFileMode(directory, OwnerOnly);
        var name = $"{Guid.NewGuid():N}.sock";
        var handle = DirectoryCalls.OpenDirectory(directory);
        try
        {
            var fd = handle.DangerousGetHandle().ToInt64();
            var listener = UnixSocketCalls.Listen($"/proc/self/fd/{fd}/{name}", backlog: 1);
            return new OciConsoleSocket(handle, listener, System.IO.Path.Combine(directory, name), $"/proc/{Environment.ProcessId}/fd/{fd}/{name}");
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The pty master the runtime sent: the first descriptor on the first connection. FailedPrecondition, starting with
    /// <paramref name="what"/>, when the runtime closes its connection without one or none came by <paramref name="deadline"/>.
    /// </summary>
    public async Task<SafeFileHandle> ReceiveAsync(string what, DateTime deadline, TimeSpan bound, CancellationToken cancellationToken)
    {
        SafeFileHandle? connection = null;
        try
        {
            while ((connection = UnixSocketCalls.Accept(_listener)) is null)
            {
                await WaitReadableAsync(_listener, deadline, cancellationToken, () =>
                    $"{what} did not connect to its --console-socket within {bound.TotalSeconds:0}s to send the terminal's pty master").ConfigureAwait(false);
            }

            // runc sends the pty's name with the descriptor; the name is not needed (the master is what counts).
            var buffer = new byte[4096];
            var descriptors = new List<SafeFileHandle>();
            while (true)
            {
                var n = UnixSocketCalls.Receive(connection, buffer, descriptors);
                if (descriptors.Count > 0)
                {
                    descriptors.Skip(1).ToList().ForEach(d => d.Dispose());
                    return descriptors[0];
                }

                if (n == 0)
                {
                    throw NacelleException.FailedPrecondition($"{what} closed its --console-socket connection without sending the terminal's pty master");
                }

                if (n < 0)
                {
                    await WaitReadableAsync(connection, deadline, cancellationToken, () =>
                        $"{what} did not send the terminal's pty master over its --console-socket within {bound.TotalSeconds:0}s").ConfigureAwait(false);
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    private static async Task WaitReadableAsync(SafeFileHandle handle, DateTime deadline, CancellationToken cancellationToken, Func<string> late)
    {
        var remaining = deadline - DateTime.UtcNow;
        if (remaining <= TimeSpan.Zero)
        {
            throw NacelleException.FailedPrecondition(late());
        }

        // The deadline on the reactor's clock: in nacelle-monitor its timer fires on the loop (no timer thread).
        using var deadlineSource = new CancellationTokenSource(remaining, FdReactor.Time);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadlineSource.Token);
        try
        {
            await FdReactor.WaitReadableAsync(handle, bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // the deadline: checked on the next round
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // its directory went with the container's state
        }

        _directory.Dispose();
    }
}
