using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.ContainerCore.Runtime;
using Nacelle.Monitor.Containers;
using Nacelle.Monitor.Server;
using Nacelle.Monitor.Stdio;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>How long an attach waits, once the container exited, for its output to be copied to the end.</summary>
    private static readonly TimeSpan AttachDrainGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// attach (version 2): the container's output from now on, copied into pipes of the attacher's own next to the CRI
    /// log (which never waits for it), and its stdin when it was created with one: a copy of the write end of its stdin
    /// pipe, or of its pty master ("pty"), which also takes resizes. The connection then belongs to the attach
    /// (<see cref="AttachSession"/>).
    /// </summary>
    private Answer Attach(MonitorRequest request, MonitorResponse ok)
    {
        var id = Id(request);
        var tracked = containers.Get(id);
        if (runtime.State(id).Status == ContainerStatus.Stopped || tracked.ExitRecorded)
        {
            throw NacelleException.FailedPrecondition($"container {id} has exited: attach needs a running container");
        }

        var names = new List<string>();
        var ends = new List<SafeFileHandle>();
        SafeFileHandle? stdin = null;
        Attacher? attacher = null;
        try
        {
            if (request.Stdin && tracked.OpenStdin && !tracked.StdinClosed)
            {
                if (tracked.Terminal is { } master)
                {
                    stdin = SpawnCalls.DuplicateAtLeast(master, 0);
                    names.Add("pty");
                }
                else if (tracked.Stdin is { } pipe && tracked.StdinOnce)
                {
                    // stdin_once: this attach is the only one that ever writes, so the write end itself goes over and
                    // the monitor keeps no copy; when the daemon closes it (its client's end of input, or the attach
                    // ending) the container reads end of file, as it would from a stdin_once container anywhere.
                    stdin = pipe;
                    tracked.Stdin = null;
                    tracked.StdinClosed = true;
                    names.Add("stdin");
                }
                else if (tracked.Stdin is { } shared)
                {
                    stdin = SpawnCalls.DuplicateAtLeast(shared, 0);
                    names.Add("stdin");
                }

                if (stdin is not null)
                {
                    ends.Add(stdin);
                }
            }

            var terminal = tracked.Terminal is not null;
            attacher = tracked.Attachers.Add(request.Stdout, request.Stderr && !terminal);
            if (attacher.StdoutRead is { } stdout)
            {
                names.Add("stdout");
                ends.Add(stdout);
            }

            if (attacher.StderrRead is { } stderr)
            {
                names.Add("stderr");
                ends.Add(stderr);
            }

            MonitorLog.Attached(log, id, string.Join(',', names));
            return new Answer(ok with { Fds = names }, new AttachSession(id, tracked, attacher, [.. ends], stdin is not null, containers, log));
        }
        catch
        {
            if (attacher is not null)
            {
                tracked.Attachers.Remove(attacher);
            }

            ends.ForEach(e => e.Dispose());
            throw;
        }
    }

    /// <summary>
    /// An attach after its answer: the descriptors go with the ok line and the monitor closes its copies; then it lasts
    /// until the daemon closes the connection (it detached), the container exits (an <c>exited</c> event with the
    /// recorded state once its output was copied to the end), or the monitor drops the attacher for being too slow (a
    /// <c>detached</c> event saying so). When an attach that took stdin ends, a stdin_once container's stdin is closed.
    /// </summary>
    private sealed class AttachSession(
        string id, TrackedContainer tracked, Attacher attacher, SafeFileHandle[] ends, bool tookStdin, PodContainers containers, ILogger log)
        : IConnectionSession
    {
        public async Task RunAsync(Connection connection, MonitorResponse answer, CancellationToken cancellationToken)
        {
            var reason = "detached";
            using var hangUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Task? closed = null;
            try
            {
                try
                {
                    await connection.WriteAsync(answer, [.. ends.Cast<SafeHandle>()], cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    Array.ForEach(ends, e => e.Dispose());
                }

                closed = connection.WaitClosedAsync(hangUp.Token);
                var exited = tracked.ExitAnnounced.Task;
                var first = await Task.WhenAny(closed, exited, attacher.Dropped.Task).ConfigureAwait(false);
                if (first == attacher.Dropped.Task)
                {
                    reason = await attacher.Dropped.Task.ConfigureAwait(false);
                    await connection.WriteAsync(new MonitorResponse
                    {
                        Id = 0, Ok = true, Event = MonitorProtocol.EventDetached, Error = reason,
                    }, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                else if (first == exited)
                {
                    reason = "the container exited";
                    try
                    {
                        // Its last output reaches the attacher before the goodbye.
                        await tracked.Pump.WaitAsync(AttachDrainGrace, FdReactor.Time, cancellationToken).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                        // a process that left the container holds its output open: say goodbye anyway
                    }

                    await connection.WriteAsync(new MonitorResponse
                    {
                        Id = 0, Ok = true, Event = MonitorProtocol.EventExited, Container = containers.Describe(id),
                    }, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or NacelleException)
            {
                reason = e.Message;
            }
            finally
            {
                tracked.Attachers.Remove(attacher);
                if (tookStdin && tracked.StdinOnce && !tracked.StdinClosed)
                {
                    // stdin_once: the first attach that took stdin closes it as it ends.
                    tracked.StdinClosed = true;
                    tracked.Stdin?.Dispose();
                    tracked.Stdin = null;
                }

                hangUp.Cancel(); // not CancelAsync: its callbacks would run on the thread pool, off the loop
                if (closed is not null)
                {
                    try
                    {
                        await closed.ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }

                MonitorLog.Detached(log, id, reason);
            }
        }
    }
}
