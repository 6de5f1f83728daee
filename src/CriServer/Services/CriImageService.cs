using Nacelle.Common;
using Nacelle.ImageService;
using Nacelle.ImageService.Store;
using Runtime.V1;

namespace Nacelle.CriServer.Services;

/// <summary>
/// The CRI ImageService over <see cref="ImageManager"/>. One file per rpc under Services/Image/ (this class is partial).
/// </summary>
internal sealed partial class CriImageService(ImageManager images) : Runtime.V1.ImageService.ImageServiceBase
{
    /// <summary>The image a request names; InvalidArgument naming the rpc when it names none.</summary>
    private static string RequireImage(ImageSpec? image, string rpc) =>
        string.IsNullOrWhiteSpace(image?.Image) ? throw NacelleException.InvalidArgument($"{rpc}: image.image is empty") : image.Image;

    /// <summary>The CRI view of a stored image.</summary>
    internal static Image ToCri(ImageRecord record)
    {
        var image = new Image
        {
            Id = record.Id,
            Size = (ulong)record.Size,
            Pinned = record.Pinned,
            Spec = new ImageSpec { Image = record.Id },
        };
        image.RepoTags.AddRange(record.RepoTags);
        image.RepoDigests.AddRange(record.RepoDigests);

        // kubelet enforces runAsNonRoot from these: a numeric user (optionally user:group) is a uid, anything else a name.
        var user = record.User.Split(':', 2)[0];
        if (user.Length > 0 && long.TryParse(user, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var uid))
        {
            image.Uid = new Int64Value { Value = uid };
        }
        else
        {
            image.Username = user;
        }

        return image;
    }
}
