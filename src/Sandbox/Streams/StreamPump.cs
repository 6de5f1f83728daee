using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Sandbox.Streams;

/// <summary>The pieces exec and attach streams (and ExecSync) are made of: byte copies, the end the monitor reports,
/// and running them together so that the first failure stops the rest.</summary>
internal static class StreamPump
{
    private const int BufferSize = 32 * 1024;

    /// <summary>Copies until <paramref name="from"/> ends; with no <paramref name="to"/> the bytes are read and dropped
    /// (a process must never block on output nobody asked for).</summary>
    public static async Task CopyAsync(Stream from, Stream? to, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        while (true)
        {
            var read = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return;
            }

            if (to is not null)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                await to.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The exit code the monitor reports on a stream connection (exec: the process's; attach: the container's; 128+N
    /// for a signal N). A monitor that drops an attacher (too slow) or closes without an exit is an error naming that.
    /// </summary>
    public static async Task<int> ExitCodeAsync(MonitorStreamConnection connection, string what, CancellationToken cancellationToken)
    {
        while (await connection.NextEventAsync(cancellationToken).ConfigureAwait(false) is { } e)
        {
            switch (e.Event)
            {
                case MonitorProtocol.EventExited when e.Exec is { } exec:
                    return exec.ExitCode;
                case MonitorProtocol.EventExited when e.Container is { } container:
                    return container.ExitCode ?? (container.ExitSignal is { } signal ? 128 + signal : 255);
                case MonitorProtocol.EventExited:
                    throw NacelleException.Internal($"{what}: the pod's monitor reported an exit without its code");
                case MonitorProtocol.EventDetached:
                    throw NacelleException.ResourceExhausted(
                        $"{what}: the pod's monitor detached this stream ({e.Error ?? "its reader fell behind"}); the container goes on");
            }
        }

        throw NacelleException.Unavailable($"{what}: the pod's monitor closed the stream without reporting an exit (did the monitor stop?)");
    }

    /// <summary>Waits for every task; the first that fails or is cancelled cancels <paramref name="stop"/> (the others)
    /// and its exception is thrown.</summary>
    public static async Task AllAsync(CancellationTokenSource stop, params Task[] tasks)
    {
        var pending = tasks.ToList();
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending).ConfigureAwait(false);
            pending.Remove(done);
            if (!done.IsCompletedSuccessfully)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await done.ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits for <paramref name="tasks"/> to finish however they end (after a cancellation, before resources
    /// they use are disposed).</summary>
    public static Task SettleAsync(params Task[] tasks) =>
        Task.WhenAll(tasks).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
}
