using System.Diagnostics;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Nacelle.Tests.EndToEnd.Infrastructure;
using Runtime.V1;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>What the fuzzer runs against: the image it may use, where logs and volumes may go, the cgroup parent of its pods.</summary>
/// <param name="Image">The busybox test image (tag reference) on the loopback registry.</param>
/// <param name="RegistryHost">host:port of the loopback registry.</param>
/// <param name="LogBase">Pods' log directories are made under it.</param>
/// <param name="VolumeBase">Host paths of the mounts the fuzzer asks for.</param>
/// <param name="CgroupParent">The cgroup parent of the fuzzer's pods (kubelet-like pods get a child of it each).</param>
/// <param name="PodNetwork">Whether a CNI network is configured (pods may get their own network namespace).</param>
internal sealed record FuzzTarget(string Image, string RegistryHost, string LogBase, string VolumeBase, string CgroupParent, bool PodNetwork);

/// <summary>
/// A seeded, stateful CRI fuzzer: each step sends one generated request (or a burst of concurrent ones about one pod)
/// for a randomly chosen rpc of RuntimeService or ImageService, judges the answer (<see cref="FuzzInvoker.Judge"/>),
/// updates its model of pods and containers, and checks that the daemon is alive and that List and Status agree with
/// each other and with the model. Requests mix valid ones (real pods and containers, so that deep code runs) with
/// hostile ones (<see cref="FuzzValues"/>). Violations are collected, not thrown: a run reports all of them.
/// </summary>
internal sealed partial class CriFuzzer(DaemonProcess daemon, FuzzTarget target, FuzzValues values, Action<string> log) : IDisposable
{
    private const int MaxLivePods = 6;
    private const int MaxLiveContainers = 14;

    /// <summary>Responses up to 32 MB: larger than the daemon's own 16 MB limit, so that its limit is what is tested.</summary>
    private readonly GrpcChannel _channel = CriChannel.ForUnixSocket(daemon.Socket, 32 << 20);
    private FuzzInvoker? _invoker;
    private readonly FuzzModel _model = new();
    private readonly List<string> _violations = [];
    private readonly Dictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly Dictionary<StatusCode, int> _codes = [];
    private int _step;

    private FuzzValues V => values;

    private FuzzInvoker Invoker => _invoker ??= new FuzzInvoker(_channel.CreateCallInvoker());

    private RuntimeService.RuntimeServiceClient Runtime => new(_channel);

    private Runtime.V1.ImageService.ImageServiceClient Images => new(_channel);

    public void Dispose() => _channel.Dispose();

    public FuzzModel Model => _model;

    public IReadOnlyList<string> Violations => _violations;

    public int Steps => _step;

    /// <summary>How often each rpc was called and how the answers were distributed (for the test's output).</summary>
    public string Summary() =>
        $"{_step} steps; calls: {string.Join(", ", _calls.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"))}; " +
        $"answers: {string.Join(", ", _codes.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}; " +
        $"refused by the protobuf parser before nacelle's code: {LibraryParseFailures}";

    /// <summary>Runs steps until <paramref name="until"/> passes or <paramref name="maxSteps"/> were made, or the daemon dies.</summary>
    public async Task RunAsync(TimeSpan duration, int? maxSteps, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var events = new CancellationTokenSource();
        var eventsTask = WatchEventsAsync(events.Token);
        try
        {
            while (!cancellationToken.IsCancellationRequested
                   && (maxSteps is { } max ? _step < max : clock.Elapsed < duration))
            {
                _step++;
                if (V.Chance(0.06) && _model.LivePods.Any())
                {
                    await BurstAsync();
                }
                else
                {
                    await StepAsync(NextCall());
                }

                if (!await AliveAsync())
                {
                    return;
                }

                await CheckConsistencyAsync(full: _step % 8 == 0);
            }
        }
        finally
        {
            await events.CancelAsync();
            await eventsTask;
        }
    }

    private async Task StepAsync(FuzzCall call)
    {
        var outcome = await SendAsync(call);
        Apply(call, outcome);
    }

    private async Task<FuzzOutcome> SendAsync(FuzzCall call)
    {
        _calls[call.Rpc] = _calls.GetValueOrDefault(call.Rpc) + 1;
        var logFrom = daemon.Output.Length;
        var outcome = await Invoker.SendAsync(call);
        _codes[outcome.Code] = _codes.GetValueOrDefault(outcome.Code) + 1;
        if (FuzzInvoker.Judge(call, outcome) is { } wrong)
        {
            Violation($"{call} {wrong}; detail: {Short(outcome.Detail)}", call.Rpc, logFrom);
        }
        else if (outcome.Detail == FuzzInvoker.LibraryParseFailure)
        {
            LibraryParseFailures++;
        }

        return outcome;
    }

    /// <summary>Requests the protobuf parser refused before nacelle's code ran (see <see cref="FuzzCall.MalformedWire"/>).</summary>
    public int LibraryParseFailures { get; private set; }

    private static void Apply(FuzzCall call, FuzzOutcome outcome)
    {
        if (outcome.Ok)
        {
            call.OnOk?.Invoke(outcome.First);
        }
        else if (outcome.Code is StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown)
        {
            call.OnUnknown?.Invoke();
        }
        else
        {
            call.OnError?.Invoke(outcome.Code);
        }
    }

    /// <summary>Several requests about one pod at once: the model learns the outcome from the daemon afterwards.</summary>
    private async Task BurstAsync()
    {
        var pod = V.Pick(_model.LivePods.ToList());
        // What each call expects alone no longer holds beside the others; only what holds whatever the order is kept:
        // stopping or removing a pod by its full id succeeds whether it still exists or not.
        var calls = Enumerable.Range(0, V.Int(2, 7)).Select(_ => BurstCall(pod))
            .Select(c => c.Rpc is "StopPodSandbox" or "RemovePodSandbox" ? c with { ExpectOk = true, MustBe = null } : c with { ExpectOk = false, MustBe = null })
            .ToList();
        var outcomes = await Task.WhenAll(calls.Select(SendAsync));
        _model.Unsettle(pod);
        _model.UnknownCreates |= outcomes.Zip(calls).Any(p => !p.First.Ok && p.Second.Rpc is "CreateContainer" or "RunPodSandbox");
        for (var i = 0; i < calls.Count; i++)
        {
            // Creates still add what they made; everything else about the pod is settled by the next check.
            if (outcomes[i].Ok && calls[i].Rpc is "CreateContainer" or "RunPodSandbox")
            {
                calls[i].OnOk?.Invoke(outcomes[i].First);
            }
        }

        foreach (var container in _model.LiveContainers.Where(c => c.Pod == pod))
        {
            container.Uncertain = true;
        }
    }

    private FuzzCall BurstCall(FuzzPod pod)
    {
        var containers = _model.LiveContainers.Where(c => c.Pod == pod).ToList();
        var container = containers.Count > 0 ? V.Pick(containers) : null;
        return V.Int(0, 9) switch
        {
            0 => StopPod(pod.Id, pod, "burst"),
            1 => RemovePod(pod.Id, pod, "burst"),
            2 when container is not null => ExecSyncValid(container),
            3 when container is not null => StopContainer(container.Id, container, V.Int(0, 3), "burst"),
            4 when container is not null => RemoveContainer(container.Id, container, "burst"),
            5 when container is not null => StartContainer(container.Id, container, "burst"),
            6 => CreateContainerValid(pod),
            7 => PodStatus(pod.Id, "burst", verbose: true),
            _ => ListContainers("burst"),
        };
    }

    // ------------------------------------------------------------------ choosing the next call

    private FuzzCall NextCall()
    {
        var pods = _model.LivePods.Count();
        var containers = _model.LiveContainers.Count();
        var full = pods >= MaxLivePods || containers >= MaxLiveContainers;
        // Weighted: creation and lifecycle often (they reach deep code), every other rpc regularly.
        var roll = V.Int(0, 100);
        return roll switch
        {
            < 9 => full ? RemoveSomething() : RunPodSandboxCall(),
            < 20 => full ? RemoveSomething() : CreateContainerCall(),
            < 27 => StartContainerCall(),
            < 33 => ExecSyncCall(),
            < 37 => StopContainerCall(),
            < 41 => RemoveContainerCall(),
            < 44 => StopPodCall(),
            < 48 => RemovePodCall(),
            < 52 => PodStatusCall(),
            < 56 => ContainerStatusCall(),
            < 60 => UpdateResourcesCall(),
            < 62 => ReopenLogCall(),
            < 65 => ListCall(),
            < 68 => StatsCall(),
            < 71 => StreamingCall(),
            < 73 => CheckpointCall(),
            < 76 => RuntimeLevelCall(),
            < 84 => ImageCall(),
            < 88 => MalformedCall(),
            < 90 => EventsCall(),
            < 93 => PodSandboxResourcesCall(),
            _ => full ? RemoveSomething() : V.Chance(0.5) ? RunPodSandboxCall() : CreateContainerCall(),
        };
    }

    private FuzzCall RemoveSomething() =>
        V.Chance(0.5) && _model.LiveContainers.Any() ? RemoveContainerCall() : RemovePodCall();

    // ------------------------------------------------------------------ ids

    private enum IdKind
    {
        Live,
        Prefix,
        Removed,
        Unknown,
        OtherKind,
        Empty,
        Hostile,
        Upper,
    }

    /// <summary>An id argument for a pod rpc: usually a live pod's, else a prefix, a removed or unknown id, a container's
    /// id, empty or hostile. Returns the pod the id uniquely names (null when none or ambiguous).</summary>
    private (string Id, IdKind Kind, FuzzPod? Pod, string What) PodId()
    {
        var live = _model.LivePods.ToList();
        var removed = _model.Pods.Where(p => p.Removed).ToList();
        var kind = V.Int(0, 100) switch
        {
            < 55 => IdKind.Live,
            < 67 => IdKind.Prefix,
            < 75 => IdKind.Removed,
            < 82 => IdKind.Unknown,
            < 87 => IdKind.OtherKind,
            < 90 => IdKind.Empty,
            < 97 => IdKind.Hostile,
            _ => IdKind.Upper,
        };
        switch (kind)
        {
            case IdKind.Live when live.Count > 0:
            {
                var pod = V.Pick(live);
                return (pod.Id, kind, pod, "live pod id");
            }
            case IdKind.Prefix when live.Count > 0:
            {
                var pod = V.Pick(live);
                var prefix = pod.Id[..V.Pick([1, 2, 3, 6, 12, 63])];
                var matches = _model.PodsMatching(prefix);
                return (prefix, kind, matches.Count == 1 ? matches[0] : null, matches.Count == 1 ? "unique pod id prefix" : "ambiguous pod id prefix");
            }
            case IdKind.Removed when removed.Count > 0:
                return (V.Pick(removed).Id, kind, null, "removed pod id");
            case IdKind.OtherKind when _model.LiveContainers.Any():
                return (V.Pick(_model.LiveContainers.ToList()).Id, kind, null, "a container's id as pod id");
            case IdKind.Empty:
                return ("", kind, null, "empty pod id");
            case IdKind.Hostile:
                return (V.HostileString(), kind, null, "hostile pod id");
            case IdKind.Upper when live.Count > 0:
                return (V.Pick(live).Id.ToUpperInvariant(), kind, null, "upper-case pod id");
            default:
                return (V.Hex(64), IdKind.Unknown, null, "unknown pod id");
        }
    }

    private (string Id, IdKind Kind, FuzzContainer? Container, string What) ContainerId()
    {
        var live = _model.LiveContainers.ToList();
        var removed = _model.Containers.Where(c => c.Removed).ToList();
        var kind = V.Int(0, 100) switch
        {
            < 60 => IdKind.Live,
            < 70 => IdKind.Prefix,
            < 77 => IdKind.Removed,
            < 83 => IdKind.Unknown,
            < 88 => IdKind.OtherKind,
            < 91 => IdKind.Empty,
            < 98 => IdKind.Hostile,
            _ => IdKind.Upper,
        };
        switch (kind)
        {
            case IdKind.Live when live.Count > 0:
            {
                var container = V.Pick(live);
                return (container.Id, kind, container, "live container id");
            }
            case IdKind.Prefix when live.Count > 0:
            {
                var container = V.Pick(live);
                var prefix = container.Id[..V.Pick([1, 2, 3, 6, 12, 63])];
                var matches = _model.ContainersMatching(prefix);
                return (prefix, kind, matches.Count == 1 ? matches[0] : null,
                    matches.Count == 1 ? "unique container id prefix" : "ambiguous container id prefix");
            }
            case IdKind.Removed when removed.Count > 0:
                return (V.Pick(removed).Id, kind, null, "removed container id");
            case IdKind.OtherKind when _model.LivePods.Any():
                return (V.Pick(_model.LivePods.ToList()).Id, kind, null, "a pod's id as container id");
            case IdKind.Empty:
                return ("", kind, null, "empty container id");
            case IdKind.Hostile:
                return (V.HostileString(), kind, null, "hostile container id");
            case IdKind.Upper when live.Count > 0:
                return (V.Pick(live).Id.ToUpperInvariant(), kind, null, "upper-case container id");
            default:
                return (V.Hex(64), IdKind.Unknown, null, "unknown container id");
        }
    }

    /// <summary>The model can tell exactly what the daemon holds (no unknown creates, nothing uncertain).</summary>
    private bool ModelCertain =>
        !_model.UnknownCreates && !_model.LivePods.Any(p => p.Uncertain) && !_model.LiveContainers.Any(c => c.Uncertain);

    // ------------------------------------------------------------------ oracles

    private async Task<bool> AliveAsync()
    {
        if (daemon.Process.HasExited)
        {
            Violation($"the daemon exited with {daemon.Process.ExitCode}", null);
            return false;
        }

        try
        {
            await Runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            return true;
        }
        catch (RpcException e)
        {
            Violation($"Version after the step answered {e.StatusCode}: {Short(e.Status.Detail)}", null);
            return !daemon.Process.HasExited;
        }
    }

    /// <summary>
    /// List and Status agree: every listed pod and container has a Status with the same state; a container's pod is
    /// listed; removed ids answer NotFound; what the model is sure of is what the daemon says (ready pods, long-running
    /// containers still running, nothing it did not create). Uncertain entries take the daemon's word.
    /// </summary>
    private async Task CheckConsistencyAsync(bool full)
    {
        var runtime = Runtime;
        List<PodSandbox> pods;
        List<Container> containers;
        try
        {
            pods = [.. (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: Deadline(30))).Items];
            containers = [.. (await runtime.ListContainersAsync(new ListContainersRequest(), deadline: Deadline(30))).Containers];
        }
        catch (RpcException e)
        {
            Violation($"List after the step answered {e.StatusCode}: {Short(e.Status.Detail)}", "List");
            return;
        }

        var listedPods = pods.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var listedContainers = containers.ToDictionary(c => c.Id, StringComparer.Ordinal);
        foreach (var container in containers.Where(c => !listedPods.ContainsKey(c.PodSandboxId)))
        {
            Violation($"container {container.Id[..12]} is listed but its pod {Prefix(container.PodSandboxId)} is not", "ListContainers");
        }

        // Pods and containers nobody asked for (a create that was refused but left its row).
        foreach (var pod in pods.Where(p => !_model.AllPodIds.Contains(p.Id)))
        {
            if (_model.UnknownCreates)
            {
                var config = new PodSandboxConfig { Metadata = pod.Metadata, LogDirectory = "" };
                _model.AddPod(pod.Id, config).Uncertain = true;
            }
            else
            {
                Violation($"pod {pod.Id[..12]} ({pod.Metadata?.Name}) is listed but no RunPodSandbox answered with it", "ListPodSandbox");
                _model.AddPod(pod.Id, new PodSandboxConfig { Metadata = pod.Metadata }).Uncertain = true;
            }
        }

        foreach (var container in containers.Where(c => !_model.AllContainerIds.Contains(c.Id)))
        {
            var owner = _model.Pods.FirstOrDefault(p => p.Id == container.PodSandboxId);
            if (!_model.UnknownCreates)
            {
                Violation($"container {container.Id[..12]} ({container.Metadata?.Name}) is listed but no CreateContainer answered with it", "ListContainers");
            }

            if (owner is not null)
            {
                _model.AddContainer(container.Id, owner, container.Metadata?.Name ?? "", longRunning: false, logFile: null).Uncertain = true;
            }
        }

        _model.UnknownCreates = false;

        foreach (var pod in _model.Pods.Where(p => !p.Removed || listedPods.ContainsKey(p.Id)))
        {
            listedPods.TryGetValue(pod.Id, out var listed);
            if (pod.Uncertain)
            {
                if (listed is null)
                {
                    _model.Removed(pod);
                }
                else
                {
                    pod.Ready = listed.State == PodSandboxState.SandboxReady;
                }

                pod.Uncertain = false;
                continue;
            }

            if (pod.Removed)
            {
                Violation($"{pod} was removed but is still listed", "ListPodSandbox");
                pod.Removed = false;
                continue;
            }

            if (listed is null)
            {
                Violation($"{pod} vanished from ListPodSandbox without a RemovePodSandbox", "ListPodSandbox");
                _model.Removed(pod);
                continue;
            }

            if (pod.Ready && listed.State != PodSandboxState.SandboxReady)
            {
                Violation($"{pod} became NotReady without a StopPodSandbox", "ListPodSandbox");
                pod.Ready = false;
            }
            else if (!pod.Ready && listed.State == PodSandboxState.SandboxReady)
            {
                Violation($"{pod} was stopped but is listed ready", "ListPodSandbox");
                pod.Ready = true;
            }
        }

        foreach (var container in _model.Containers.Where(c => !c.Removed || listedContainers.ContainsKey(c.Id)))
        {
            listedContainers.TryGetValue(container.Id, out var listed);
            if (container.Uncertain || container.Pod.Uncertain)
            {
                if (listed is null)
                {
                    container.Removed = true;
                }
                else
                {
                    container.State = State(listed.State);
                }

                container.Uncertain = false;
                continue;
            }

            if (container.Removed)
            {
                Violation($"{container} was removed but is still listed", "ListContainers");
                container.Removed = false;
                continue;
            }

            if (listed is null)
            {
                Violation($"{container} vanished from ListContainers without a RemoveContainer", "ListContainers");
                container.Removed = true;
                continue;
            }

            var state = State(listed.State);
            if (state != container.State)
            {
                // A short command may exit by itself; a long-running one only when something stopped it. A created
                // container in a pod that is not ready may be killed with it (a create that raced the pod's stop is
                // parked in the pod's namespaces, which end with pause-init).
                var fine = state == FuzzContainerState.Exited
                    && ((container.State == FuzzContainerState.Running && (!container.LongRunning || container.MayHaveDied))
                        || (container.State == FuzzContainerState.Created && !container.Pod.Ready));
                if (!fine)
                {
                    Violation($"{container} is {listed.State} but the fuzzer expected {container.State}", "ListContainers");
                }

                container.State = state;
            }
        }

        // Status for what is listed (all of it on a full check, a few otherwise) and NotFound for some removed ids.
        var podSample = full ? pods : [.. pods.OrderBy(_ => V.Random.Next()).Take(2)];
        foreach (var pod in podSample)
        {
            await CheckPodStatusAsync(pod);
        }

        var containerSample = full ? containers : [.. containers.OrderBy(_ => V.Random.Next()).Take(3)];
        foreach (var container in containerSample)
        {
            await CheckContainerStatusAsync(container);
        }

        foreach (var gone in _model.Pods.Where(p => p.Removed).OrderBy(_ => V.Random.Next()).Take(full ? 4 : 1))
        {
            await ExpectNotFoundAsync("PodSandboxStatus", () => runtime.PodSandboxStatusAsync(
                new PodSandboxStatusRequest { PodSandboxId = gone.Id }, deadline: Deadline(30)).ResponseAsync, gone.ToString());
        }

        foreach (var gone in _model.Containers.Where(c => c.Removed).OrderBy(_ => V.Random.Next()).Take(full ? 4 : 1))
        {
            await ExpectNotFoundAsync("ContainerStatus", () => runtime.ContainerStatusAsync(
                new ContainerStatusRequest { ContainerId = gone.Id }, deadline: Deadline(30)).ResponseAsync, gone.ToString());
        }
    }

    private async Task CheckPodStatusAsync(PodSandbox listed)
    {
        try
        {
            var status = (await Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = listed.Id },
                deadline: Deadline(30))).Status;
            if (status.Id != listed.Id || !Equals(status.Metadata, listed.Metadata) || status.CreatedAt != listed.CreatedAt)
            {
                Violation($"PodSandboxStatus of {listed.Id[..12]} disagrees with ListPodSandbox: {Short(status.ToString())} vs {Short(listed.ToString())}", "PodSandboxStatus");
            }
            else if (status.State != listed.State && !(listed.State == PodSandboxState.SandboxReady))
            {
                Violation($"pod {listed.Id[..12]} is listed {listed.State} but its status says {status.State}", "PodSandboxStatus");
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && BeingChanged(listed.Id))
        {
        }
        catch (RpcException e)
        {
            Violation($"pod {listed.Id[..12]} is listed but PodSandboxStatus answered {e.StatusCode}: {Short(e.Status.Detail)}", "PodSandboxStatus");
        }
    }

    private async Task CheckContainerStatusAsync(Container listed)
    {
        try
        {
            var response = await Runtime.ContainerStatusAsync(
                new ContainerStatusRequest { ContainerId = listed.Id, Verbose = V.Chance(0.3) }, deadline: Deadline(30));
            var status = response.Status;
            if (status.Id != listed.Id || !Equals(status.Metadata, listed.Metadata) || status.CreatedAt != listed.CreatedAt
                || status.ImageRef != listed.ImageRef)
            {
                Violation($"ContainerStatus of {listed.Id[..12]} disagrees with ListContainers: {Short(status.ToString())} vs {Short(listed.ToString())}", "ContainerStatus");
            }

            // Only forward in time: created -> running -> exited.
            if ((int)status.State < (int)listed.State && status.State != ContainerState.ContainerUnknown)
            {
                Violation($"container {listed.Id[..12]} is listed {listed.State} but its status says {status.State}", "ContainerStatus");
            }

            if (status.LogPath.Length > 0 && !_model.AcceptedLogDirectories.Any(d => IsUnder(status.LogPath, d)))
            {
                Violation($"container {listed.Id[..12]} logs to {Short(status.LogPath)}, outside every log directory RunPodSandbox accepted", "ContainerStatus");
            }

            if (_model.Containers.FirstOrDefault(c => c.Id == listed.Id) is { LogFile: { } expected } known && status.LogPath != expected
                && !known.Uncertain)
            {
                Violation($"{known} logs to {Short(status.LogPath)}, expected {expected}", "ContainerStatus");
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && BeingChanged(listed.Id))
        {
        }
        catch (RpcException e)
        {
            Violation($"container {listed.Id[..12]} is listed but ContainerStatus answered {e.StatusCode}: {Short(e.Status.Detail)}", "ContainerStatus");
        }
    }

    private async Task ExpectNotFoundAsync(string rpc, Func<Task> call, string what)
    {
        try
        {
            await call();
            Violation($"{rpc} of removed {what} answered OK", rpc);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
        catch (RpcException e)
        {
            Violation($"{rpc} of removed {what} answered {e.StatusCode} (expected NotFound): {Short(e.Status.Detail)}", rpc);
        }
    }

    /// <summary>Nothing runs concurrently with the check; kept for clarity where an id could be mid-change.</summary>
    private static bool BeingChanged(string id) => id.Length == 0;

    /// <summary>A subscriber that stays for the whole run: every event must be about something the model knows.</summary>
    private async Task WatchEventsAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var call = Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: cancellationToken);
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                var e = call.ResponseStream.Current;
                if (e.ContainerId.Length == 0)
                {
                    Violation("GetContainerEvents sent an event without a container id", "GetContainerEvents");
                }
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled || cancellationToken.IsCancellationRequested)
        {
        }
        catch (RpcException e)
        {
            Violation($"the GetContainerEvents stream ended with {e.StatusCode}: {Short(e.Status.Detail)}", "GetContainerEvents");
        }
        catch (OperationCanceledException)
        {
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Records a violation with the daemon's log lines written since <paramref name="logFrom"/> (warnings,
    /// failures and the rpc's own line), or its last lines.</summary>
    private void Violation(string text, string? rpc, int? logFrom = null)
    {
        var output = daemon.Output;
        var recent = logFrom is { } from && from <= output.Length ? output[from..] : output[Math.Max(0, output.Length - 4000)..];
        var lines = recent.Split('\n').Where(l => l.Length > 0 && (rpc is null || l.Contains(rpc, StringComparison.Ordinal)
                                                                    || l.Contains(" fail:", StringComparison.Ordinal) || l.Contains(" warn:", StringComparison.Ordinal)))
            .TakeLast(6);
        var entry = $"step {_step}: {text}\n      daemon: {string.Join("\n      daemon: ", lines.Select(l => Short(l, 600)))}";
        _violations.Add(entry);
        log("VIOLATION " + entry);
    }

    private static FuzzContainerState State(ContainerState state) => state switch
    {
        ContainerState.ContainerCreated => FuzzContainerState.Created,
        ContainerState.ContainerRunning => FuzzContainerState.Running,
        _ => FuzzContainerState.Exited,
    };

    private static DateTime Deadline(int seconds) => DateTime.UtcNow.AddSeconds(seconds);

    public static string Short(string? text, int max = 300)
    {
        text ??= "";
        text = text.Replace("\0", "\\0", StringComparison.Ordinal);
        return text.Length <= max ? text : text[..max] + $"... ({text.Length} chars)";
    }

    private static string Prefix(string id) => id.Length > 12 ? id[..12] : id;

    public static bool IsUnder(string path, string directory) =>
        path.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal);

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static ByteString Utf8(string text) => ByteString.CopyFrom(Encoding.UTF8.GetBytes(text));
}
