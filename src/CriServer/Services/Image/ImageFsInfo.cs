using Grpc.Core;
using Nacelle.Common;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    /// <summary>
    /// Disk used by images (unpacked layers + content store, mount point: the snapshots directory) and by containers'
    /// writable layers (their upper directories, mount point: the containers directory), in allocated bytes and inodes.
    /// Served from numbers kept in memory: no file is walked while the rpc runs.
    /// </summary>
    public override Task<ImageFsInfoResponse> ImageFsInfo(ImageFsInfoRequest request, ServerCallContext context)
    {
        var usage = images.FsUsage();
        var response = new ImageFsInfoResponse();
        response.ImageFilesystems.Add(new FilesystemUsage
        {
            Timestamp = UnixTime.Nanoseconds(usage.ImageMeasuredAt),
            FsId = new FilesystemIdentifier { Mountpoint = usage.ImageMountpoint },
            UsedBytes = new UInt64Value { Value = (ulong)usage.ImageBytes },
            InodesUsed = new UInt64Value { Value = (ulong)usage.ImageInodes },
        });
        response.ContainerFilesystems.Add(new FilesystemUsage
        {
            Timestamp = UnixTime.Nanoseconds(usage.ContainerMeasuredAt),
            FsId = new FilesystemIdentifier { Mountpoint = usage.ContainerMountpoint },
            UsedBytes = new UInt64Value { Value = (ulong)usage.ContainerBytes },
            InodesUsed = new UInt64Value { Value = (ulong)usage.ContainerInodes },
        });
        return Task.FromResult(response);
    }
}
