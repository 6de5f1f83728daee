using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;

namespace Nacelle.Sandbox.Monitor;

/// <summary>
/// A monitor connection that belongs to one exec-stream or attach (protocol version 2): the ok answer, the descriptors
/// that came with it by name ("pty", "stdin", "stdout", "stderr"), then the events the monitor writes until it closes
/// (<see cref="MonitorProtocol.EventExited"/>, <see cref="MonitorProtocol.EventDetached"/>). Disposing it closes the
/// connection, which to the monitor means: kill the exec process, or detach.
/// </summary>
public sealed class MonitorStreamConnection : IAsyncDisposable
{
    private readonly string _socketPath;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly MemoryStream _pending;
    private readonly Dictionary<string, SafeFileHandle> _descriptors;

    internal MonitorStreamConnection(string socketPath, Socket socket, MemoryStream pending, MonitorResponse answer,
        Dictionary<string, SafeFileHandle> descriptors)
    {
        _socketPath = socketPath;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _pending = pending;
        Answer = answer;
        _descriptors = descriptors;
    }

    /// <summary>The monitor's ok answer.</summary>
    public MonitorResponse Answer { get; }

    /// <summary>The names of the descriptors received and not yet taken.</summary>
    public IReadOnlyCollection<string> DescriptorNames => _descriptors.Keys;

    /// <summary>The descriptor named <paramref name="name"/>, now the caller's to dispose; null when the monitor sent none
    /// by that name.</summary>
    public SafeFileHandle? Take(string name) => _descriptors.Remove(name, out var handle) ? handle : null;

    /// <summary>The descriptor named <paramref name="name"/>, which the protocol says must have come; Internal otherwise.</summary>
    public SafeFileHandle TakeRequired(string name) => Take(name) ?? throw NacelleException.Internal(
        $"pod monitor at {_socketPath} answered with descriptors [{string.Join(", ", Answer.Fds ?? [])}], without \"{name}\"");

    /// <summary>The next event line; null once the monitor has closed the connection. Unavailable when the connection
    /// fails.</summary>
    public async Task<MonitorResponse?> NextEventAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await MonitorProtocol.ReadLineAsync(_stream, _pending, cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorResponse) is { Event: not null } e)
                {
                    return e;
                }
            }

            return null;
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw NacelleException.Unavailable($"pod monitor at {_socketPath}: {e.Message}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var handle in _descriptors.Values)
        {
            handle.Dispose();
        }

        _descriptors.Clear();
        try
        {
            // Our end goes first: the monitor then sees end of stream at once, whatever is still unread.
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // the monitor closed first
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
