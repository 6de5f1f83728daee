using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.Sandbox.Streams;

namespace Nacelle.CriServer.Streaming;

/// <summary>Everything one connected stream session works with.</summary>
internal sealed class StreamContext
{
    public required PendingStream Request { get; init; }

    public required IStreamBackend Backend { get; init; }

    public required StreamingOptions Options { get; init; }

    public required StreamLimits Limits { get; init; }

    public required ILogger Logger { get; init; }

    /// <summary>Fires when the client's HTTP connection ends or the server stops.</summary>
    public required CancellationToken Cancellation { get; init; }

    /// <summary>How long a session that has ended waits for the client to close its side before the connection is cut.</summary>
    public static readonly TimeSpan Linger = TimeSpan.FromSeconds(5);
}

/// <summary>Closes a connection that has carried nothing for the idle timeout (kubelet's streaming idle timeout).</summary>
internal static class IdleWatch
{
    public static async Task RunAsync(Func<long> lastActivity, TimeSpan timeout, Action onIdle, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return;
        }

        var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 30_000));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                if (Environment.TickCount64 - lastActivity() >= timeout.TotalMilliseconds)
                {
                    onIdle();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the session ended first
        }
    }
}

/// <summary>The streams an exec or attach asked for.</summary>
internal readonly record struct CommandStreams(bool Stdin, bool Stdout, bool Stderr, bool Tty)
{
    public static CommandStreams Of(PendingStream request) => request switch
    {
        ExecStream e => new CommandStreams(e.Stdin, e.Stdout, e.Stderr, e.Tty),
        AttachStream a => new CommandStreams(a.Stdin, a.Stdout, a.Stderr, a.Tty),
        _ => throw new InvalidOperationException($"{request.Kind} is not a command"),
    };
}

/// <summary>Runs an exec or attach on the backend and turns its end into what the error stream says.</summary>
internal static class RemoteCommandRunner
{
    /// <summary>The outcome to report, or null when the client is gone (nobody to tell). Logs the session's start and,
    /// when the client is gone, its end (<paramref name="endReason"/> says why, when known).</summary>
    public static async Task<CommandOutcome?> RunAsync(StreamContext context, StreamIo io, string transport, string protocol,
        Func<string?> endReason, CancellationToken cancellationToken)
    {
        StreamLog.StreamConnected(context.Logger, context.Request.PathSegment, context.Request.PodId, transport, protocol);
        var outcome = await RunAsync(context, io, cancellationToken).ConfigureAwait(false);
        if (outcome is null)
        {
            StreamLog.StreamEnded(context.Logger, context.Request.PathSegment, context.Request.PodId, endReason() ?? "the client went away");
        }

        return outcome;
    }

    /// <summary>What the error stream carries for <paramref name="outcome"/> in <paramref name="protocol"/>.</summary>
    public static byte[] ErrorStreamContent(CommandOutcome outcome, string protocol) =>
        StreamProtocols.HasStatusJson(protocol) ? outcome.ToStatusJson() : outcome.ToText();

    private static async Task<CommandOutcome?> RunAsync(StreamContext context, StreamIo io, CancellationToken cancellationToken)
    {
        try
        {
            var exitCode = context.Request switch
            {
                ExecStream exec => await context.Backend.ExecAsync(exec, io, cancellationToken).ConfigureAwait(false),
                AttachStream attach => await context.Backend.AttachAsync(attach, io, cancellationToken).ConfigureAwait(false),
                _ => throw new InvalidOperationException($"{context.Request.Kind} is not a command"),
            };
            return CommandOutcome.Exited(exitCode);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (IOException e) when (cancellationToken.IsCancellationRequested || e is StreamClosedException)
        {
            return null;
        }
        catch (NacelleException e)
        {
            return CommandOutcome.Failed(e.Message);
        }
#pragma warning disable CA1031 // a backend failure is reported to the client, never allowed to crash the daemon
        catch (Exception e)
#pragma warning restore CA1031
        {
            StreamLog.StreamFailed(context.Logger, e, context.Request.PathSegment, e.Message);
            return CommandOutcome.Failed(e.Message);
        }
    }
}
