using System.Net.Sockets;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Makes sure this daemon is the only one serving its socket. An exclusive lock on "&lt;socket&gt;.lock" stops two
/// daemons racing at start; a socket file that still answers means a live server, so we refuse to start; a socket
/// file that refuses connections is stale (a crashed run) and is replaced. Anything else at the path is refused.
/// </summary>
internal sealed class SocketGuard : IDisposable
{
    private readonly FileStream _lock;

    private SocketGuard(string socketPath, FileStream lockFile, bool removedStale)
    {
        SocketPath = socketPath;
        _lock = lockFile;
        RemovedStaleSocket = removedStale;
    }

    public string SocketPath { get; }

    public bool RemovedStaleSocket { get; }

    /// <summary>Takes the lock and clears a stale socket, or throws <see cref="DaemonStartException"/>.</summary>
    public static SocketGuard Acquire(string socketPath)
    {
        var directory = Path.GetDirectoryName(socketPath)!;
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory,
                $"grpc.socket {socketPath}: cannot create its directory {directory}: {e.Message}; " +
                "make it a writable directory or set grpc.socket (--socket) to a path in one");
        }

        FileStream lockFile;
        try
        {
            // On Unix, FileShare.None takes a non-blocking flock(LOCK_EX); the kernel drops it when the process dies.
            lockFile = new FileStream(socketPath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(socketPath + ".lock"))
        {
            throw new DaemonStartException(ExitCodes.InUse,
                $"grpc.socket {socketPath}: another nacelle is running for this socket (it holds {socketPath}.lock); " +
                "stop it first, or give this daemon another socket (--socket or grpc.socket)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory,
                $"grpc.socket {socketPath}: cannot create the lock file {socketPath}.lock: {e.Message}; " +
                "make the directory writable or set grpc.socket (--socket) to a path in a writable one");
        }

        try
        {
            var removed = ClearStaleSocket(socketPath);
            return new SocketGuard(socketPath, lockFile, removed);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    private static bool ClearStaleSocket(string socketPath)
    {
        var kind = FileKinds.Of(socketPath);
        if (kind == FileKind.Missing)
        {
            return false;
        }

        if (kind != FileKind.Socket)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory,
                $"grpc.socket {socketPath} exists and is a {kind}, not a unix socket; nacelle does not replace it: " +
                "move it away or set grpc.socket (--socket) to another path");
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(socketPath));
                throw new DaemonStartException(ExitCodes.InUse,
                    $"grpc.socket {socketPath}: another process is already serving this socket; stop it, " +
                    "or give this daemon another socket (--socket or grpc.socket)");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody is listening: the file was left behind by a daemon that died.
            }
        }

        File.Delete(socketPath);
        return true;
    }

    /// <summary>Removes the socket file this daemon served (at shutdown), keeping the lock until disposed.</summary>
    public void RemoveSocket()
    {
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
            // Already gone or the directory was removed: nothing left to clean.
        }
    }

    public void Dispose() => _lock.Dispose();
}

/// <summary>
/// The daemon cannot start (socket or address in use, unusable state directory...). Main prints the message, one line
/// naming the setting and the fix, and exits with <see cref="ExitCode"/> (one of <see cref="ExitCodes"/>).
/// </summary>
internal sealed class DaemonStartException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
