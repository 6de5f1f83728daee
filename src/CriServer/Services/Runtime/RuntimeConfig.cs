using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    public override Task<RuntimeConfigResponse> RuntimeConfig(RuntimeConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new RuntimeConfigResponse
        {
            Linux = new LinuxRuntimeConfiguration
            {
                CgroupDriver = daemon.Config.Cgroup.Driver == "systemd" ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
            },
        });
}
