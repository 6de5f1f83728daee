using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.Monitor.Memory;

namespace Nacelle.Monitor.Server;

/// <summary>
/// One connection from the daemon, on the event loop: request lines in, answer and event lines out (an answer may
/// carry descriptors as SCM_RIGHTS), all without blocking. Between lines it holds nothing but the bytes of a line still
/// arriving.
/// </summary>
internal sealed class Connection(SafeFileHandle socket) : IDisposable
{
    // A pending-line buffer at most this big is kept between lines; a bigger one (a large spec) is let go.
    private const int KeptCapacity = 4096;

    private byte[]? _pending;
    private int _pendingLength;

    /// <summary>The next request line (without its newline), or null when the daemon closed the connection. A line over
    /// <see cref="MonitorProtocol.MaxLineBytes"/> is refused (InvalidArgument) and ends the connection.</summary>
    public async Task<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TakeLine() is { } line)
            {
                return line;
            }

            if (_pendingLength > MonitorProtocol.MaxLineBytes)
            {
                throw NacelleException.InvalidArgument($"monitor protocol: a line is longer than {MonitorProtocol.MaxLineBytes} bytes");
            }

            var n = ReceiveOnce();
            if (n == 0)
            {
                return null;
            }

            if (n < 0)
            {
                await FdReactor.WaitReadableAsync(socket, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Completes when the daemon closes the connection (or it fails); anything it sends meanwhile is read and
    /// ignored. For connections that became a stream or a watch.</summary>
    public async Task WaitClosedAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await ReadLineAsync(cancellationToken).ConfigureAwait(false) is not null)
            {
            }
        }
        catch (Exception e) when (e is IOException or NacelleException)
        {
            // broken: as good as closed
        }
    }

    /// <summary>Writes <paramref name="data"/> entirely, waiting while the socket is full; <paramref name="descriptors"/>
    /// go along with its first byte. Throws IOException when the daemon is gone.</summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> data, IReadOnlyList<SafeHandle>? descriptors = null, CancellationToken cancellationToken = default)
    {
        var offset = 0;
        while (offset < data.Length)
        {
            var n = offset == 0 && descriptors is { Count: > 0 }
                ? UnixSocketCalls.Send(socket, data.Span, [.. descriptors])
                : UnixSocketCalls.Send(socket, data.Span[offset..]);
            if (n < 0)
            {
                await FdReactor.WaitWritableAsync(socket, cancellationToken).ConfigureAwait(false);
                continue;
            }

            offset += n;
        }
    }

    /// <summary>Writes one protocol message as a line.</summary>
    public Task WriteAsync(MonitorResponse message, IReadOnlyList<SafeHandle>? descriptors = null, CancellationToken cancellationToken = default) =>
        WriteAsync(MonitorProtocol.Encode(message, MonitorJson.Current.MonitorResponse), descriptors, cancellationToken);

    /// <summary>One receive into the lent read buffer, appended to the pending bytes: the count, 0 at the end, -1 when
    /// nothing is there yet.</summary>
    private int ReceiveOnce()
    {
        using var lease = ScratchMemory.Read.Rent();
        var buffer = lease.Span;
        var n = UnixSocketCalls.Receive(socket, buffer);
        if (n > 0)
        {
            var needed = _pendingLength + n;
            if (_pending is null || _pending.Length < needed)
            {
                var grown = new byte[Math.Max(needed, Math.Min((_pending?.Length ?? 0) * 2, MonitorProtocol.MaxLineBytes + buffer.Length))];
                _pending.AsSpan(0, _pendingLength).CopyTo(grown);
                _pending = grown;
            }

            buffer[..n].CopyTo(_pending.AsSpan(_pendingLength));
            _pendingLength = needed;
        }

        return n;
    }

    private byte[]? TakeLine()
    {
        var pending = _pending.AsSpan(0, _pendingLength);
        var newline = pending.IndexOf((byte)'\n');
        if (newline < 0)
        {
            return null;
        }

        var line = pending[..newline].ToArray();
        var rest = pending[(newline + 1)..];
        rest.CopyTo(_pending);
        _pendingLength = rest.Length;
        if (_pendingLength == 0 && _pending!.Length > KeptCapacity)
        {
            _pending = null;
        }

        return line;
    }

    public void Dispose() => socket.Dispose();
}
