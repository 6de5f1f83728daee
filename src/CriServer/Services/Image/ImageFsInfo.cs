using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    public override Task<ImageFsInfoResponse> ImageFsInfo(ImageFsInfoRequest request, ServerCallContext context)
    {
        var usage = images.FsUsage();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        var response = new ImageFsInfoResponse();
        response.ImageFilesystems.Add(new FilesystemUsage
        {
            Timestamp = now,
            FsId = new FilesystemIdentifier { Mountpoint = usage.ImageMountpoint },
            UsedBytes = new UInt64Value { Value = (ulong)usage.ImageBytes },
            InodesUsed = new UInt64Value { Value = (ulong)usage.ImageInodes },
        });

        // Containers' writable layers live apart from the image layers: report them as the container filesystem.
        response.ContainerFilesystems.Add(new FilesystemUsage
        {
            Timestamp = now,
            FsId = new FilesystemIdentifier { Mountpoint = usage.ContainerMountpoint },
            UsedBytes = new UInt64Value { Value = (ulong)usage.ContainerBytes },
            InodesUsed = new UInt64Value { Value = (ulong)usage.ContainerInodes },
        });
        return Task.FromResult(response);
    }
}
