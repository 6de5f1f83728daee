using Grpc.Core;
using Nacelle.CriServer.Services.Containers;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>A container's status; verbose adds info["info"] with its pid, sandbox id and OCI spec (as crictl
    /// inspect shows for other runtimes).</summary>
    public override async Task<ContainerStatusResponse> ContainerStatus(ContainerStatusRequest request, ServerCallContext context)
    {
        var container = await containers.StatusAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        var response = new ContainerStatusResponse { Status = ContainerMapping.ToStatus(container, containers.SpecJson) };
        if (request.Verbose)
        {
            var specJson = containers.SpecJson(container);
            response.Info["info"] = JsonText.Write(json =>
            {
                json.WriteStartObject();
                json.WriteString("sandboxID", container.PodId);
                json.WriteNumber("pid", container.State == Sandbox.Store.ContainerRecordState.Running ? container.Pid ?? 0 : 0);
                json.WriteString("bundle", containers.BundleDirectory(container.PodId, container.Id));
                json.WriteString("cgroupPath", container.CgroupPath);
                json.WriteString("logPath", container.LogFile);
                json.WriteString("image", container.ImageRef);
                json.WriteString("imageId", container.ImageId);
                json.WriteNumber("stopSignal", container.StopSignal);
                json.WritePropertyName("runtimeSpec");
                if (specJson is null)
                {
                    json.WriteNullValue();
                }
                else
                {
                    // The bundle's config.json, which the daemon serialized itself: not parsed again to be checked.
                    json.WriteRawValue(specJson, skipInputValidation: true);
                }

                json.WriteEndObject();
            });
        }

        return response;
    }
}
