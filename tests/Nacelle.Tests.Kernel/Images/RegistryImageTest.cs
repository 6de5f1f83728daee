using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Storage;
using Nacelle.ImageService;
using Nacelle.Tests.Kernel.Storage;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Tests.Kernel.Images;

/// <summary>What the image tests share: a temp root, a registry on loopback with its pusher, and an ImageManager.</summary>
public abstract class RegistryImageTest : IAsyncLifetime
{
    protected TempRoot Root { get; } = new();

    protected RegistryServer Registry { get; private set; } = null!;

    protected OciPusher Pusher { get; private set; } = null!;

    protected ImageManager Images { get; set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Registry = await RegistryServer.StartAsync();
        Pusher = Registry.CreatePusher();
        Images = NewManager();
    }

    public virtual async ValueTask DisposeAsync()
    {
        Images.Dispose();
        Pusher.Dispose();
        await Registry.DisposeAsync();
        Root.Dispose();
        GC.SuppressFinalize(this);
    }

    protected ImageManager NewManager() =>
        new(new ImageServiceOptions { Root = Root.Path }, new MetadataDatabase(Path.Combine(Root.Path, "metadata.db")), NullLoggerFactory.Instance);

    protected string Ref(string repository, string tag) => $"{Registry.Host}/{repository}:{tag}";
}
