using Google.Protobuf;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriRuntimeService
{
    /// <summary>Runs a command in a running container and answers with its output and exit code. The output fits one
    /// response (grpc.max_send_message_size, 16 MiB: kubelet's limit too) for stdout and stderr together; a command that
    /// writes more is killed and answered ResourceExhausted. A timeout (seconds, 0: none) that fires is DeadlineExceeded.</summary>
    public override async Task<ExecSyncResponse> ExecSync(ExecSyncRequest request, ServerCallContext context)
    {
        var result = await containers.ExecSyncAsync(request.ContainerId, [.. request.Cmd], CriTimeouts.FromSeconds(request.Timeout),
            context.CancellationToken).ConfigureAwait(false);
        return new ExecSyncResponse
        {
            ExitCode = result.ExitCode, Stdout = ByteString.CopyFrom(result.Stdout), Stderr = ByteString.CopyFrom(result.Stderr),
        };
    }
}
