using Grpc.Core;
using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Hosting;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    public override async Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var response = new StatusResponse
        {
            Status = new RuntimeStatus
            {
                Conditions =
                {
                    Condition("RuntimeReady", readiness.Runtime()),
                    Condition("NetworkReady", readiness.Network()),
                },
            },
        };

        // Every handler with the optional features it really has on this kernel (probed once at start: a user
        // namespace with idmapped layers under an overlay; mount_setattr making a tree read-only). Supplemental groups
        // policy (Merge/Strict) is the runtime's.
        foreach (var handler in (await pods.HandlersAsync(context.CancellationToken).ConfigureAwait(false)).All)
        {
            response.RuntimeHandlers.Add(new RuntimeHandler
            {
                Name = handler.Name,
                Features = new RuntimeHandlerFeatures
                {
                    RecursiveReadOnlyMounts = handler.Features.RecursiveReadOnlyMounts, UserNamespaces = handler.Features.UserNamespaces,
                },
            });
        }

        response.Features = new RuntimeFeatures { SupplementalGroupsPolicy = true };

        if (request.Verbose)
        {
            response.Info["config"] = ConfigRenderer.ToJson(daemon.Config);
            response.Info["runtime"] = RuntimeInfoJson();
            response.Info["cni"] = CniInfoJson();
        }

        return response;
    }

    private static RuntimeCondition Condition(string type, Readiness readiness) => new()
    {
        Type = type,
        Status = readiness.Ready,
        Reason = readiness.Reason,
        Message = readiness.Message,
    };

    private string RuntimeInfoJson() => JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("version", DaemonInfo.Version);
        json.WriteNumber("pid", Environment.ProcessId);
        json.WriteString("startedAt", daemon.StartedAt);
        if (daemon.ReloadedAt is { } reloadedAt)
        {
            json.WriteString("configReloadedAt", reloadedAt);
        }

        json.WriteString("cgroupMode", daemon.Cgroups.Mode.ToString());
        json.WriteStartArray("configFiles");
        foreach (var file in daemon.Loaded.Files)
        {
            json.WriteStringValue(file);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    });

    // The pod network in use, kept small: the full message is the NetworkReady condition's.
    private string CniInfoJson() => JsonText.Write(json =>
    {
        var status = network.Status();
        json.WriteStartObject();
        json.WriteBoolean("ready", status.Ready);
        json.WriteString("network", status.Network?.Name ?? string.Empty);
        json.WriteBoolean("default", status.IsDefaultNetwork);
        json.WriteString("source", status.Network?.Source ?? string.Empty);
        json.WriteString("confDir", network.Options.ConfDir);
        json.WriteString("podCidr", network.PodCidr);
        json.WriteNumber("skippedConfigs", status.Skipped.Count);
        json.WriteEndObject();
    });
}
