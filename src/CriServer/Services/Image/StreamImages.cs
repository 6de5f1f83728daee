using Grpc.Core;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

internal sealed partial class CriImageService
{
    // Images are sent in batches so a node with many images never builds one huge message.
    private const int StreamBatchSize = 100;

    public override async Task StreamImages(StreamImagesRequest request, IServerStreamWriter<StreamImagesResponse> responseStream, ServerCallContext context)
    {
        foreach (var batch in Filtered(request.Filter).Select(ToCri).Chunk(StreamBatchSize))
        {
            var response = new StreamImagesResponse();
            response.Images.AddRange(batch);
            await responseStream.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
        }
    }
}
