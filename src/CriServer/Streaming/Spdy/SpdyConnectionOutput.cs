using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.CriServer.Streaming.Spdy;

/// <summary>
/// Where a SPDY session's frames go, one frame at a time under the session's write lock: a frame is a head (a control
/// frame, or a data frame's 8-byte header) and an optional payload written after it, so a data frame's payload is never
/// copied into a frame buffer of its own.
/// </summary>
/// <remarks>
/// Two ways out, never mixed: the upgraded connection's stream (always right, the only way for TLS), or, for a plain
/// TCP connection, its socket itself, which skips the server's output pipe (a copy and a thread hop per write). The
/// socket may only be written once nothing the server wrote is still on its way: the 101 answer went through the
/// server's pipe, and the peer sends its first frame only after reading it. So frames go to the socket once the peer
/// has spoken (<see cref="PeerSpoke"/>) and as long as no frame went to the stream; a frame written to the stream
/// keeps every later one there. (A client that sends frames before it has read the 101 can only scramble its own
/// connection.)
/// </remarks>
internal sealed class SpdyConnectionOutput
{
    /// <summary>The most read out of a pipe at once when the frame goes to the stream.</summary>
    private const int CopyChunk = 128 * 1024;

    private readonly Stream _stream;
    private readonly Socket? _socket;
    private volatile bool _peerSpoke;
    private bool _streamUsed;

    /// <param name="stream">The upgraded connection.</param>
    /// <param name="socket">The same connection's socket when nothing (no TLS) sits between the stream and it.</param>
    public SpdyConnectionOutput(Stream stream, Socket? socket)
    {
        _stream = stream;
        _socket = socket;
    }

    /// <summary>True when frames can go straight to the socket (once the peer has spoken).</summary>
    public bool HasSocket => _socket is not null;

    /// <summary>True once frames go straight to the socket.</summary>
    public bool Direct => _socket is not null && !_streamUsed && _peerSpoke;

    /// <summary>The peer's first bytes arrived: it has read the server's answer.</summary>
    public void PeerSpoke() => _peerSpoke = true;

    /// <summary>Writes <paramref name="head"/> then <paramref name="payload"/>, whole. One caller at a time.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (Direct)
        {
            await SendAllAsync(_socket!, head, cancellationToken).ConfigureAwait(false);
            await SendAllAsync(_socket!, payload, cancellationToken).ConfigureAwait(false);
            return;
        }

        _streamUsed = true;
        await _stream.WriteAsync(head, cancellationToken).ConfigureAwait(false);
        if (!payload.IsEmpty)
        {
            await _stream.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
        }

        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes <paramref name="head"/> then <paramref name="length"/> bytes waiting in <paramref name="pipe"/>
    /// (non-blocking, holding at least that many): on the socket they move from the pipe by splice(2), never entering
    /// this process, the head sent with MSG_MORE so that it leaves with them; on the stream they are read out first.
    /// One caller at a time.</summary>
    public async ValueTask WriteFromPipeAsync(ReadOnlyMemory<byte> head, SafeHandle pipe, int length, CancellationToken cancellationToken)
    {
        if (!Direct)
        {
            // Read out in pieces of at most CopyChunk: a large pipe's frame does not become a large buffer here.
            _streamUsed = true;
            var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(length, CopyChunk));
            try
            {
                await _stream.WriteAsync(head, cancellationToken).ConfigureAwait(false);
                for (var left = length; left > 0;)
                {
                    var chunk = Math.Min(left, buffer.Length);
                    for (var read = 0; read < chunk;)
                    {
                        var n = DescriptorCalls.Read(pipe, buffer.AsSpan(read, chunk - read));
                        read += n > 0 ? n : throw new IOException($"the pipe held {length - left + read} of the {length} bytes to send");
                    }

                    await _stream.WriteAsync(buffer.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
                    left -= chunk;
                }

                await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            return;
        }

        var socket = _socket!.SafeHandle;
        while (!head.IsEmpty)
        {
            var sent = SpliceCalls.Send(socket, head.Span, more: true);
            if (sent < 0)
            {
                await FdReactor.WaitWritableAsync(socket, cancellationToken).ConfigureAwait(false);
                continue;
            }

            head = head[sent..];
        }

        while (length > 0)
        {
            var moved = SpliceCalls.Splice(pipe, socket, length, more: false);
            if (moved < 0)
            {
                await FdReactor.WaitWritableAsync(socket, cancellationToken).ConfigureAwait(false);
                continue;
            }

            length -= moved > 0 ? moved : throw new IOException($"the pipe ran dry with {length} bytes still to send");
        }
    }

    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            bytes = bytes[sent..];
        }
    }
}
