using System.Text.Json;
using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    public override Task<ImageStatusResponse> ImageStatus(ImageStatusRequest request, ServerCallContext context)
    {
        var spec = RequireImage(request.Image, nameof(ImageStatus));

        // CRI: an image that is not present is an empty answer, not an error.
        var response = new ImageStatusResponse();
        if (images.Find(spec) is not { } record)
        {
            return Task.FromResult(response);
        }

        response.Image = ToCri(record);
        if (request.Verbose)
        {
            response.Info["info"] = VerboseInfo(record);
        }

        return Task.FromResult(response);
    }

    // As crictl inspecti shows for other runtimes: the image config ("imageSpec") plus where it came from.
    private static string VerboseInfo(Nacelle.ImageService.Store.ImageRecord record) => JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("imageId", record.Id);
        json.WriteString("manifestDigest", record.ManifestDigest);
        json.WriteString("chainId", record.TopChainId);
        json.WriteString("pulledAt", record.PulledAt);
        json.WritePropertyName("imageSpec");
        using (var config = JsonDocument.Parse(record.Config))
        {
            config.RootElement.WriteTo(json);
        }

        json.WriteEndObject();
    });
}
