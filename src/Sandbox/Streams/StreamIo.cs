using System.Threading.Channels;

namespace Nacelle.Sandbox.Streams;

/// <summary>A terminal size as the clients send it (columns x rows).</summary>
public readonly record struct TerminalSize(ushort Width, ushort Height);

/// <summary>
/// The client's side of an exec or attach, as byte streams. Streams the client did not ask for are null.
/// <see cref="Stdin"/> reads return 0 at the client's end of input (it closed stdin, or went away);
/// writes to <see cref="Stdout"/>/<see cref="Stderr"/> wait while the client is slow to read (bounded buffers),
/// and throw <see cref="IOException"/> once it is gone. <see cref="Resize"/> holds the latest terminal size
/// (older ones are dropped) and completes when the client sends no more.
/// </summary>
public sealed class StreamIo
{
    public Stream? Stdin { get; init; }

    public Stream? Stdout { get; init; }

    public Stream? Stderr { get; init; }

    public bool Tty { get; init; }

    public ChannelReader<TerminalSize>? Resize { get; init; }
}
