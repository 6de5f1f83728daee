using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    public override Task<ListImagesResponse> ListImages(ListImagesRequest request, ServerCallContext context)
    {
        var response = new ListImagesResponse();
        response.Images.AddRange(Filtered(request.Filter).Select(ToCri));
        return Task.FromResult(response);
    }

    // An empty filter lists everything; a filter naming an image lists that image (or nothing).
    private IEnumerable<Nacelle.ImageService.Store.ImageRecord> Filtered(ImageFilter? filter)
    {
        var spec = filter?.Image?.Image;
        if (string.IsNullOrEmpty(spec))
        {
            return images.List();
        }

        return images.Find(spec) is { } match ? [match] : [];
    }
}
