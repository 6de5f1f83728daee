using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Processes;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>
/// TCP connections to a loopback port inside a network namespace (port-forward into a pod), made by the spawn helper's
/// connect mode: the helper joins the namespace, connects to 127.0.0.1 (then [::1]), sends the connected socket back
/// as SCM_RIGHTS and exits. No thread of this process ever enters the namespace; the socket works here like any other.
/// </summary>
/// <param name="helper">The spawn helper (null: <see cref="SpawnHelperBinary.Shared"/>, loaded at the first connection).</param>
/// <param name="timeout">How long a connection may take.</param>
public sealed class NamespaceConnector(SpawnHelperBinary? helper = null, TimeSpan? timeout = null)
{
    private const int ENOENT = 2;
    private const int ETIMEDOUT = 110;
    private const int ECONNREFUSED = 111;
    private const int EHOSTUNREACH = 113;
    private const int ENETUNREACH = 101;
    private const int EADDRNOTAVAIL = 99;

    // Room for the helper's stage in argv ("nacelle-spawn: connect" in ps).
    private static readonly string TitlePadding = new(' ', 16);

    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(10);

    /// <summary>A socket connected to <paramref name="port"/> on loopback in the network namespace at
    /// <paramref name="netnsPath"/>, owned by the caller. Nothing listening there is Unavailable; a namespace that is
    /// gone is NotFound; no answer within the timeout (a backlog that stays full) is DeadlineExceeded.</summary>
    public async Task<Socket> ConnectLoopbackAsync(string netnsPath, int port, CancellationToken cancellationToken = default)
    {
        var message = SpawnMessage.EncodeConnect(netnsPath, port);
        using var memfd = SpawnCalls.CreateMemoryFile("nacelle-connect-message", allowSealing: true);
        RandomAccess.Write(memfd, message, 0);
        SpawnCalls.AddSeals(memfd, SpawnCalls.F_SEAL_WRITE | SpawnCalls.F_SEAL_GROW | SpawnCalls.F_SEAL_SHRINK);

        var (ours, theirs) = SpawnCalls.CreateSeqPacketPair();
        using (ours)
        {
            WatchedProcess process;
            using (theirs)
            {
                process = WatchedProcess.Adopt(SpawnCalls.Spawn((helper ?? SpawnHelperBinary.Shared).ExecPath, ["nacelle-spawn", TitlePadding], [null, null, null, theirs, memfd]));
            }

            SafeFileHandle? descriptor = null;
            try
            {
                var report = await Spawner.ReceiveAsync(ours, DateTime.UtcNow + _timeout, cancellationToken).ConfigureAwait(false);
                descriptor = report?.Descriptor;
                switch (report)
                {
                    case { Kind: SpawnProtocol.ReportSocket } when descriptor is not null:
                        // The Socket takes the descriptor over.
                        var socket = new Socket(new SafeSocketHandle(descriptor.DangerousGetHandle(), ownsHandle: true));
                        descriptor.SetHandleAsInvalid();
                        return socket;
                    case { Kind: SpawnProtocol.ReportError } error:
                        throw ToException(error);
                    default:
                        throw NacelleException.Internal($"the spawn helper's connect mode ended without a socket (report {report?.Kind.ToString() ?? "none"})");
                }
            }
            finally
            {
                descriptor?.Dispose();
                if (!process.HasExited)
                {
                    process.Signal(Signals.SIGKILL);
                }

                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                process.Dispose();
            }
        }
    }

    private static SpawnException ToException(Spawner.Report error)
    {
        var kind = error.Errno switch
        {
            ECONNREFUSED or ENETUNREACH or EHOSTUNREACH or EADDRNOTAVAIL => ErrorKind.Unavailable,
            ETIMEDOUT => ErrorKind.DeadlineExceeded,
            ENOENT => ErrorKind.NotFound,
            _ => ErrorKind.Internal,
        };
        var reason = error.Errno == 0 ? string.Empty : $": {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(error.Errno)} (errno {error.Errno})";
        return new SpawnException(kind, error.Stage, error.Errno, error.Message, $"{error.Message}{reason}");
    }
}
