using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    public override async Task<RemoveImageResponse> RemoveImage(RemoveImageRequest request, ServerCallContext context)
    {
        var spec = RequireImage(request.Image, nameof(RemoveImage));

        // Removing an image that is not there succeeds (CRI: RemoveImage is idempotent).
        await images.RemoveAsync(spec, context.CancellationToken).ConfigureAwait(false);
        return new RemoveImageResponse();
    }
}
