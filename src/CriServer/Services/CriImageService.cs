using Runtime.V1;

namespace Nacelle.CriServer.Services;

/// <summary>
/// The CRI ImageService. One file per rpc under Services/Image/ (this class is partial); none is implemented
/// yet, so every rpc answers Unimplemented naming itself.
/// </summary>
internal sealed partial class CriImageService : ImageService.ImageServiceBase
{
}
