using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.CriServer.Streaming;
using Nacelle.Tests.Support.Streaming;
using Nacelle.Sandbox.Streams;

namespace Nacelle.Tests.Kernel.Streaming;

/// <summary>
/// A stream backend for protocol tests: exec runs the command as a host process (pipes, or a pty through
/// Clients/ptyrun.py for a terminal, resized on every resize event); attach runs the command registered for the
/// container the same way; port-forward connects to 127.0.0.1:port. Cancellation kills the process tree.
/// </summary>
internal sealed class HostStreamBackend : IStreamBackend, IDisposable
{
    private const int SIGUSR1 = 10;

    private readonly string _sizeDirectory = Directory.CreateTempSubdirectory("nacelle-stream-sizes-").FullName;
    private int _cancelled;
    private int _started;

    /// <summary>Commands attach runs, by container id.</summary>
    public ConcurrentDictionary<string, string[]> AttachCommands { get; } = new();

    /// <summary>Exec and attach calls that ended by cancellation (their process killed).</summary>
    public int Cancelled => Volatile.Read(ref _cancelled);

    public int Started => Volatile.Read(ref _started);

    /// <summary>Ports OpenPortAsync refuses, as a pod with nothing listening would.</summary>
    public ConcurrentDictionary<int, string> RefusedPorts { get; } = new();

    public void Dispose() => Directory.Delete(_sizeDirectory, recursive: true);

    public Task<int> ExecAsync(ExecStream request, StreamIo io, CancellationToken cancellationToken) =>
        RunAsync([.. request.Command], io, cancellationToken);

    public Task<int> AttachAsync(AttachStream request, StreamIo io, CancellationToken cancellationToken) =>
        AttachCommands.TryGetValue(request.ContainerId, out var command)
            ? RunAsync(command, io, cancellationToken)
            : throw NacelleException.NotFound($"container {request.ContainerId} has no attach command in this test");

    public async Task<Socket> OpenPortAsync(string podId, int port, CancellationToken cancellationToken)
    {
        if (RefusedPorts.TryGetValue(port, out var why))
        {
            throw NacelleException.Unavailable(why);
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw NacelleException.Unavailable($"connect to 127.0.0.1:{port}: {e.Message}");
        }
    }

    private async Task<int> RunAsync(string[] command, StreamIo io, CancellationToken cancellationToken)
    {
        var sizeFile = Path.Combine(_sizeDirectory, Guid.NewGuid().ToString("N"));
        var info = io.Tty
            ? new ProcessStartInfo("/usr/bin/python3") { ArgumentList = { StreamClients.PtyRun, sizeFile, "24", "80" } }
            : new ProcessStartInfo(command[0]);
        foreach (var argument in io.Tty ? command : command[1..])
        {
            info.ArgumentList.Add(argument);
        }

        info.RedirectStandardInput = info.RedirectStandardOutput = info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("no process");
        Interlocked.Increment(ref _started);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stdin = io.Stdin is { } input ? CopyStdinAsync(input, process.StandardInput.BaseStream, stop.Token) : CloseAsync(process.StandardInput.BaseStream);
        var stdout = CopyAsync(process.StandardOutput.BaseStream, io.Stdout, stop.Token);
        var stderr = CopyAsync(process.StandardError.BaseStream, io.Stderr, stop.Token);
        var resize = io.Resize is { } sizes ? ResizeAsync(sizes, process.Id, sizeFile, stop.Token) : Task.CompletedTask;
        try
        {
            await process.WaitForExitAsync(cancellationToken);
            await Task.WhenAll(stdout, stderr).WaitAsync(cancellationToken);
            return process.ExitCode;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client is gone or cannot be written to: the command goes too.
            Interlocked.Increment(ref _cancelled);
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        finally
        {
            // Once the process is gone, its stdin is no longer read.
            await stop.CancelAsync();
            await Task.WhenAll(stdin, resize).ContinueWith(_ => { }, TaskScheduler.Default);
            File.Delete(sizeFile);
        }
    }

    private static async Task CloseAsync(Stream stdin) => await stdin.DisposeAsync();

    private static async Task CopyStdinAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        try
        {
            await from.CopyToAsync(to, cancellationToken);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // the process stopped reading, or the session is over
        }
        finally
        {
            try
            {
                await to.DisposeAsync();
            }
            catch (IOException)
            {
                // broken pipe: the process is gone
            }
        }
    }

    private static async Task CopyAsync(Stream from, Stream? to, CancellationToken cancellationToken)
    {
        var buffer = new byte[32 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                return;
            }

            if (to is not null)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
    }

    private static async Task ResizeAsync(System.Threading.Channels.ChannelReader<TerminalSize> sizes, int pid, string sizeFile, CancellationToken cancellationToken)
    {
        try
        {
            var ready = false;
            await foreach (var size in sizes.ReadAllAsync(cancellationToken))
            {
                // SIGUSR1 kills a process that has not installed its handler yet: wait until ptyrun.py has.
                ready = ready || await HandlesSignalAsync(pid, SIGUSR1, cancellationToken);
                var temporary = sizeFile + ".new";
                await File.WriteAllTextAsync(temporary, $"{size.Height} {size.Width}", cancellationToken);
                File.Move(temporary, sizeFile, overwrite: true);
                if (ready)
                {
                    Signals.Send(pid, SIGUSR1);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the process is gone
        }
    }

    /// <summary>Waits (a few seconds at most) until the process catches <paramref name="signal"/> (SigCgt in /proc).</summary>
    private static async Task<bool> HandlesSignalAsync(int pid, int signal, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 500; attempt++)
        {
            try
            {
                var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("SigCgt:", StringComparison.Ordinal));
                if (line is not null && (Convert.ToUInt64(line["SigCgt:".Length..].Trim(), 16) & (1UL << (signal - 1))) != 0)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                return false;
            }

            await Task.Delay(10, cancellationToken);
        }

        return false;
    }
}
