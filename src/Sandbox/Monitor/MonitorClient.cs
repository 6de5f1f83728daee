using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Sandbox.Monitor;

/// <summary>The daemon's side of one pod's monitor connection: one request at a time, reconnecting when needed.</summary>
public sealed class MonitorClient : IAsyncDisposable
{
    private readonly string _socketPath;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private NetworkStream? _stream;
    private readonly MemoryStream _pending = new();
    private long _nextId;
    private bool _disposed;

    public MonitorClient(string socketPath) => _socketPath = socketPath;

    /// <summary>The protocol version agreed with the monitor at <see cref="ConnectAsync"/> (0 before).</summary>
    public int ProtocolVersion { get; private set; }

    /// <summary>Connects, retrying until the monitor listens or <paramref name="timeout"/> passes, and agrees on the protocol
    /// version: the newest both speak. A version 1 monitor (started by an older daemon) refuses any other version in its
    /// hello, so a refusal of this daemon's newest is answered by asking for version 1.</summary>
    public async Task<MonitorResponse> ConnectAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        var asked = MonitorProtocol.Version;
        // A monitor just launched listens within milliseconds: look again soon, then less often.
        var pause = 1;
        while (true)
        {
            try
            {
                var answer = await SendAsync(new MonitorRequest { Op = MonitorProtocol.Hello, Version = asked }, cancellationToken).ConfigureAwait(false);
                var agreed = answer.Version ?? 1;
                if (agreed < MonitorProtocol.MinVersion || agreed > asked)
                {
                    throw NacelleException.FailedPrecondition($"pod monitor at {_socketPath} answered protocol version {agreed}, asked for {asked}");
                }

                ProtocolVersion = agreed;
                return answer;
            }
            catch (NacelleException e) when (e.Kind == ErrorKind.FailedPrecondition && asked > 1 && e.Message.Contains("protocol version", StringComparison.Ordinal))
            {
                asked = 1;
            }
            catch (NacelleException e) when (e.Kind == ErrorKind.Unavailable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
                pause = Math.Min(pause * 2, 10);
            }
        }
    }

    /// <summary>Sends one request and returns its response; a failed response is thrown as its NacelleException.</summary>
    public async Task<MonitorResponse> SendAsync(MonitorRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                // The pod is being stopped or removed by another call, which closed this connection.
                throw NacelleException.FailedPrecondition($"{request.Op}: the connection to the pod's monitor at {_socketPath} was closed (the pod is being removed)");
            }

            var sent = request with { Id = ++_nextId };
            var encoded = MonitorProtocol.Encode(sent, MonitorJson.Default.MonitorRequest);
            if (encoded.Length > MonitorProtocol.MaxLineBytes)
            {
                // The monitor would drop the connection on it: refuse it here, saying what is too big.
                throw NacelleException.ResourceExhausted(
                    $"{request.Op} for {request.ContainerId ?? "the pod"}: the request to the pod's monitor is {encoded.Length} bytes, " +
                    $"over the protocol's limit of {MonitorProtocol.MaxLineBytes} bytes (the OCI spec: args, env, annotations and mounts together)");
            }

            var stream = await EnsureConnectedAsync(cancellationToken).ConfigureAwait(false);
            byte[]? line;
            try
            {
                await stream.WriteAsync(encoded, cancellationToken).ConfigureAwait(false);
                line = await MonitorProtocol.ReadLineAsync(stream, _pending, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                Disconnect();
                throw NacelleException.Unavailable($"pod monitor at {_socketPath}: {e.Message}", e);
            }
            catch (OperationCanceledException)
            {
                // The caller gave up mid-exchange (a CRI deadline): the answer may still come, or the request be half
                // written. Kept, the connection would hand that answer to the next request, which then fails as a
                // mismatch; the next request gets a fresh connection instead.
                Disconnect();
                throw;
            }

            if (line is null)
            {
                Disconnect();
                throw NacelleException.Unavailable($"pod monitor at {_socketPath} closed the connection");
            }

            var response = JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorResponse)
                ?? throw NacelleException.Internal("pod monitor sent an empty response");
            if (response.Id != sent.Id)
            {
                Disconnect();
                throw NacelleException.Internal($"pod monitor answered request {response.Id}, expected {sent.Id}");
            }

            return response.Ok ? response : throw response.ToException();
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Watches the monitor's exit events on a connection of its own: once the monitor has accepted the watch,
    /// <paramref name="watching"/> runs (the caller lists, so nothing that exited before is missed), then every event
    /// goes to <paramref name="onEvent"/>. Returns when the monitor closes the connection; throws Unavailable when it
    /// cannot be reached.
    /// </summary>
    public static async Task WatchAsync(string socketPath, Func<Task> watching, Func<MonitorResponse, Task> onEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(watching);
        ArgumentNullException.ThrowIfNull(onEvent);
        using var socket = await ConnectSocketAsync(socketPath, cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var pending = new MemoryStream();
        try
        {
            await stream.WriteAsync(MonitorProtocol.Encode(new MonitorRequest { Id = 1, Op = MonitorProtocol.Watch }, MonitorJson.Default.MonitorRequest),
                cancellationToken).ConfigureAwait(false);
            var first = await MonitorProtocol.ReadLineAsync(stream, pending, cancellationToken).ConfigureAwait(false);
            if (first is null)
            {
                throw NacelleException.Unavailable($"pod monitor at {socketPath} closed the watch connection");
            }

            var answer = JsonSerializer.Deserialize(first, MonitorJson.Default.MonitorResponse)
                ?? throw NacelleException.Internal("pod monitor sent an empty response");
            if (!answer.Ok)
            {
                throw answer.ToException();
            }

            await watching().ConfigureAwait(false);
            while (await MonitorProtocol.ReadLineAsync(stream, pending, cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorResponse) is { Event: not null } e)
                {
                    await onEvent(e).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw NacelleException.Unavailable($"pod monitor at {socketPath}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Starts an exec-stream or attach (protocol version 2) on a connection of its own and returns that connection with
    /// the descriptors the monitor's answer carried (SCM_RIGHTS, named by <see cref="MonitorResponse.Fds"/>); the events
    /// that follow are read from it. A refusal is thrown as the monitor's NacelleException. A monitor that speaks only
    /// version 1 (started by an older nacelle) cannot carry streams: FailedPrecondition, saying so.
    /// </summary>
    public async Task<MonitorStreamConnection> OpenStreamAsync(MonitorRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Op is not (MonitorProtocol.ExecStream or MonitorProtocol.Attach))
        {
            throw new ArgumentException($"{request.Op} is not a stream operation", nameof(request));
        }

        if (ProtocolVersion == 0)
        {
            await ConnectAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }

        EnsureStreams(request.Op);
        var encoded = MonitorProtocol.Encode(request with { Id = 1 }, MonitorJson.Default.MonitorRequest);
        if (encoded.Length > MonitorProtocol.MaxLineBytes)
        {
            throw NacelleException.ResourceExhausted(
                $"{request.Op} for {request.ContainerId}: the request to the pod's monitor is {encoded.Length} bytes, over the protocol's limit of " +
                $"{MonitorProtocol.MaxLineBytes} bytes (the process: args, env and the container's settings together)");
        }

        Socket? socket = await ConnectSocketAsync(_socketPath, cancellationToken).ConfigureAwait(false);
        var descriptors = new List<SafeFileHandle>();
        try
        {
            await socket.SendAsync(encoded, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            // The answer line comes with the descriptors: read with recvmsg until its end (a plain read would close them).
            var pending = new MemoryStream();
            byte[]? line;
            await using (var receiver = new DescriptorReceiver(socket, descriptors))
            {
                line = await MonitorProtocol.ReadLineAsync(receiver, pending, cancellationToken).ConfigureAwait(false);
            }

            var answer = (line is null ? null : JsonSerializer.Deserialize(line, MonitorJson.Default.MonitorResponse))
                ?? throw NacelleException.Unavailable($"pod monitor at {_socketPath} closed the connection without answering {request.Op}");
            if (!answer.Ok)
            {
                throw answer.ToException();
            }

            var names = answer.Fds ?? [];
            if (answer.Id != 1 || names.Count != descriptors.Count || names.Distinct(StringComparer.Ordinal).Count() != names.Count)
            {
                throw NacelleException.Internal(
                    $"pod monitor at {_socketPath} answered {request.Op} (request {answer.Id}) naming descriptors [{string.Join(", ", names)}] " +
                    $"and sent {descriptors.Count}");
            }

            var byName = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
            for (var i = 0; i < names.Count; i++)
            {
                byName[names[i]] = descriptors[i];
            }

            descriptors.Clear();
            var connection = new MonitorStreamConnection(_socketPath, socket, pending, answer, byName);
            socket = null;
            return connection;
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw NacelleException.Unavailable($"pod monitor at {_socketPath}: {e.Message}", e);
        }
        finally
        {
            descriptors.ForEach(d => d.Dispose());
            socket?.Dispose();
        }
    }

    /// <summary>Throws FailedPrecondition unless the monitor speaks a protocol that carries exec and attach streams.</summary>
    public void EnsureStreams(string what)
    {
        if (ProtocolVersion < 2)
        {
            throw NacelleException.FailedPrecondition(
                $"{what} needs version 2 of the pod monitor's protocol, and this pod's monitor ({_socketPath}) speaks version {ProtocolVersion}: " +
                "it was started by an older nacelle. Pods created from now on have monitors that can; recreate this one to use it");
        }
    }

    /// <summary>Reads a unix socket with recvmsg, keeping every descriptor that arrives (SCM_RIGHTS) in order.</summary>
    private sealed class DescriptorReceiver(Socket socket, List<SafeFileHandle> descriptors) : Stream
    {
        private readonly SafeFileHandle _handle = new(socket.Handle, ownsHandle: false);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var n = UnixSocketCalls.Receive(_handle, buffer.Span, descriptors);
                if (n >= 0)
                {
                    return n;
                }

                await FdReactor.WaitReadableAsync(_handle, cancellationToken).ConfigureAwait(false);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _handle.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private async Task<NetworkStream> EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_stream is { } connected)
        {
            return connected;
        }

        var socket = await ConnectSocketAsync(_socketPath, cancellationToken).ConfigureAwait(false);
        _pending.SetLength(0);
        _stream = new NetworkStream(socket, ownsSocket: true);
        return _stream;
    }

    /// <summary>A connected socket to the monitor; Unavailable when nothing listens there.</summary>
    private static async Task<Socket> ConnectSocketAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw NacelleException.Unavailable($"pod monitor at {socketPath} is not answering: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void Disconnect()
    {
        _stream?.Dispose();
        _stream = null;
    }

    /// <summary>Closes the connection, after the request in flight (if any) had a moment to get its answer; later requests
    /// are refused. The lock is not disposed: a call that shared this client may still be waiting for it, and one whose
    /// connection is closed under it fails as Unavailable, never with the client's disposal.</summary>
    public async ValueTask DisposeAsync()
    {
        var held = await _lock.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        try
        {
            _disposed = true;
            Disconnect();
        }
        finally
        {
            if (held)
            {
                _lock.Release();
            }
        }
    }
}
