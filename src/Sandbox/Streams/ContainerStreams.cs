using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Monitor;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;

namespace Nacelle.Sandbox.Streams;

/// <summary>
/// What kubectl exec, attach and port-forward run on, once the streaming server has a client: the bytes flow between
/// the client's streams (<see cref="StreamIo"/>) and descriptors of the pod's processes the monitor hands to the daemon
/// (pipes or a pty master), or a TCP socket made inside the pod's network namespace by the spawn helper. No thread of
/// the daemon waits on a descriptor (the fd reactor does) or enters a pod's namespace. A call that is cancelled (the
/// client went away, the daemon stops) closes its monitor connection: the exec process is killed and reaped by the
/// monitor, an attach detached.
/// </summary>
public sealed class ContainerStreams(ContainerManager containers, PodManager pods, NamespaceConnector connector)
{
    /// <summary>
    /// Runs <paramref name="command"/> in the running container with <paramref name="io"/> as its stdio and returns
    /// its exit code (128+N for a signal) once it has exited and all its output has reached the client.
    /// </summary>
    /// <remarks>
    /// The client's end of input closes the process's stdin pipe. With a terminal there is no pipe to close: closing
    /// the pty master would hang the terminal up (SIGHUP to the session) and lose the output still to be read, so what a
    /// user at the terminal types for end of input is written instead, if the terminal has one (see
    /// <see cref="TerminalEndOfInput"/>).
    /// </remarks>
    public async Task<int> ExecAsync(string containerId, IReadOnlyList<string> command, StreamIo io, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(io);
        var container = containers.Running(containerId, "exec");
        // The size the client sent first (clients send it at once), so the program starts at the right size.
        TerminalSize? size = null;
        while (io.Tty && io.Resize is { } sizes && sizes.TryRead(out var latest))
        {
            size = latest;
        }

        await using var connection = await containers.OpenExecStreamAsync(container, command, io.Stdin is not null, io.Tty, size, cancellationToken)
            .ConfigureAwait(false);
        var what = $"exec of {string.Join(' ', command)} in container {container.Id}";
        if (io.Tty)
        {
            var master = connection.TakeRequired("pty");
            return await CarryAsync(connection, what, io,
                input: io.Stdin is null ? null : new DescriptorStream(SpawnCalls.DuplicateAtLeast(master, 3), read: false),
                stdout: new DescriptorStream(master, read: true), stderr: null, terminal: master, endOfInput: TerminalEndOfInput, cancellationToken)
                .ConfigureAwait(false);
        }

        return await CarryAsync(connection, what, io,
            input: io.Stdin is null ? null : new DescriptorStream(connection.TakeRequired("stdin"), read: false),
            stdout: new DescriptorStream(connection.TakeRequired("stdout"), read: true),
            stderr: new DescriptorStream(connection.TakeRequired("stderr"), read: true), terminal: null, endOfInput: null, cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Attaches <paramref name="io"/> to the running container's main process: its output from now on (the CRI log
    /// goes on being written), stdin to its stdin or terminal, resizes to its terminal. Returns the container's exit
    /// code when it exits; cancellation detaches and leaves the container alone. The client's end of input ends this
    /// attach's input (for a stdin_once container the monitor then closes the container's stdin when the attach ends).
    /// </summary>
    public async Task<int> AttachAsync(string containerId, StreamIo io, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(io);
        var container = containers.Running(containerId, "attach");
        await using var connection = await containers.OpenAttachAsync(container, io.Stdin is not null, io.Stdout is not null, io.Stderr is not null,
            cancellationToken).ConfigureAwait(false);
        var terminal = connection.Take("pty");
        var stdin = terminal is not null ? new DescriptorStream(SpawnCalls.DuplicateAtLeast(terminal, 3), read: false)
            : connection.Take("stdin") is { } pipe ? new DescriptorStream(pipe, read: false) : null;
        try
        {
            return await CarryAsync(connection, $"attach to container {container.Id}", io, stdin,
                connection.Take("stdout") is { } stdout ? new DescriptorStream(stdout, read: true) : null,
                connection.Take("stderr") is { } stderr ? new DescriptorStream(stderr, read: true) : null,
                terminal, endOfInput: null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            terminal?.Dispose();
        }
    }

    /// <summary>
    /// A TCP connection to <paramref name="port"/> on localhost in the pod's network namespace (127.0.0.1, then [::1]):
    /// made by the spawn helper inside the namespace and handed back; a host-network pod's is made here directly.
    /// Nothing listening is Unavailable, naming the port and the pod.
    /// </summary>
    public async Task<Socket> OpenPortAsync(string podId, int port, CancellationToken cancellationToken)
    {
        var pod = pods.Get(podId);
        if (pod.State != PodState.Ready)
        {
            throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} is not ready: port-forward needs a running pod");
        }

        try
        {
            if (pod.NamespaceOptions.Network == PodNamespaceMode.Node)
            {
                return await ConnectHostLoopbackAsync(port, cancellationToken).ConfigureAwait(false);
            }

            if (pod.NetnsPath.Length == 0)
            {
                throw NacelleException.FailedPrecondition($"pod sandbox {pod.Id} has no network namespace");
            }

            return await connector.ConnectLoopbackAsync(pod.NetnsPath, port, cancellationToken).ConfigureAwait(false);
        }
        catch (NacelleException e) when (e.Kind != ErrorKind.FailedPrecondition)
        {
            throw new NacelleException(e.Kind, $"port-forward to port {port} of pod sandbox {pod.Id}: {e.Message}", e);
        }
    }

    /// <summary>localhost:<paramref name="port"/> of the host: 127.0.0.1 first, then [::1].</summary>
    private static async Task<Socket> ConnectHostLoopbackAsync(int port, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var address in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return socket;
            }
            catch (SocketException e)
            {
                socket.Dispose();
                failures.Add($"{new IPEndPoint(address, port)}: {e.Message}");
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw NacelleException.Unavailable($"cannot connect to localhost ({string.Join("; ", failures)})");
    }

    /// <summary>
    /// Carries one exec or attach until the monitor reports its end: output to the client until each descriptor's end,
    /// the client's input to the process, terminal sizes to the terminal. The exit code is returned once every byte the
    /// process wrote has been passed on; the first failure (the client gone, the monitor gone) ends everything.
    /// </summary>
    private static async Task<int> CarryAsync(MonitorStreamConnection connection, string what, StreamIo io, DescriptorStream? input,
        DescriptorStream? stdout, DescriptorStream? stderr, SafeFileHandle? terminal, Func<SafeFileHandle, byte?>? endOfInput,
        CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var exit = StreamPump.ExitCodeAsync(connection, what, stop.Token);
        var output = stdout is null ? Task.CompletedTask : StreamPump.CopyAsync(stdout, io.Stdout, stop.Token);
        var errors = stderr is null ? Task.CompletedTask : StreamPump.CopyAsync(stderr, io.Stderr, stop.Token);
        // Neither input nor resizes decide the end: once the process has exited they are no longer read.
        var feed = input is null || io.Stdin is null ? Task.CompletedTask : FeedAsync(io.Stdin, input, endOfInput, stop.Token);
        var resize = terminal is null || io.Resize is null ? Task.CompletedTask : ResizeAsync(io.Resize, terminal, stop.Token);
        try
        {
            await StreamPump.AllAsync(stop, exit, output, errors).ConfigureAwait(false);
            return exit.Result;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await StreamPump.SettleAsync(exit, output, errors, feed, resize).ConfigureAwait(false);
            input?.Dispose();
            stdout?.Dispose();
            stderr?.Dispose();
        }
    }

    /// <summary>The client's input to the process; at its end the input descriptor is closed, or, for a terminal,
    /// what <paramref name="endOfInput"/> gives for it then is written. A process that stops reading ends the feed
    /// quietly.</summary>
    private static async Task FeedAsync(Stream from, DescriptorStream to, Func<SafeFileHandle, byte?>? endOfInput, CancellationToken cancellationToken)
    {
        try
        {
            await StreamPump.CopyAsync(from, to, cancellationToken).ConfigureAwait(false);
            if (endOfInput is null)
            {
                to.Dispose();
            }
            else if (endOfInput(to.Handle) is { } eof)
            {
                await to.WriteAsync(new[] { eof }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // the process no longer reads its input (EPIPE), or the terminal is gone (EIO)
        }
    }

    /// <summary>
    /// The end of input for a terminal, as its mode is when the client's input ends: its VEOF character (^D unless the
    /// program changed it) while it reads lines, which ends a read at the start of a line (a shell or cat sees end of
    /// file); nothing for a program that switched the terminal to raw mode, which reads every byte as a key press and
    /// has no end of input to be told (a ^D would reach it as a keystroke the user never typed). Nothing either when
    /// VEOF is disabled or the terminal is gone.
    /// </summary>
    internal static byte? TerminalEndOfInput(SafeFileHandle terminal)
    {
        try
        {
            var (canonical, endOfFile) = Pty.GetInputMode(terminal);
            return canonical && endOfFile != 0 ? endOfFile : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Every terminal size the client sends, to the terminal (the foreground process gets SIGWINCH).</summary>
    private static async Task ResizeAsync(ChannelReader<TerminalSize> sizes, SafeFileHandle terminal, CancellationToken cancellationToken)
    {
        await foreach (var size in sizes.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (size.Width == 0 || size.Height == 0)
            {
                continue;
            }

            try
            {
                Pty.SetWindowSize(terminal, size.Height, size.Width);
            }
            catch (IOException)
            {
                return; // the terminal is gone
            }
        }
    }
}
