using Grpc.Core;
using Nacelle.ImageService.Registry;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    public override async Task<PullImageResponse> PullImage(PullImageRequest request, ServerCallContext context)
    {
        var name = RequireImage(request.Image, nameof(PullImage));
        var auth = request.Auth;
        var credentials = auth is null
            ? null
            : new RegistryCredentials(
                NullIfEmpty(auth.Username), NullIfEmpty(auth.Password), NullIfEmpty(auth.Auth),
                NullIfEmpty(auth.IdentityToken), NullIfEmpty(auth.RegistryToken));
        var image = await images.PullAsync(name, credentials, context.CancellationToken).ConfigureAwait(false);
        return new PullImageResponse { ImageRef = image.Id };
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
