using System.Text;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Monitor.Operations;

internal sealed partial class MonitorOperations
{
    /// <summary>update: new cgroup limits (OCI linux.resources) for a container.</summary>
    private async Task<MonitorResponse> UpdateAsync(MonitorRequest request, MonitorResponse ok)
    {
        await runtime.UpdateResourcesAsync(Id(request), ParseResources(request)).ConfigureAwait(false);
        return ok with { Container = containers.Describe(Id(request)) };
    }

    private static SpecResources ParseResources(MonitorRequest request)
    {
        try
        {
            return JsonSerializer.Deserialize(
                Encoding.UTF8.GetBytes(request.ResourcesJson ?? throw NacelleException.InvalidArgument("update: resourcesJson is required")),
                RuntimeSpecJson.Current.SpecResources) ?? throw NacelleException.InvalidArgument("update: resourcesJson is null");
        }
        catch (JsonException e)
        {
            throw NacelleException.InvalidArgument($"update: resourcesJson is not OCI linux.resources: {e.Message}");
        }
    }
}
