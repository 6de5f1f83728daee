namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>One daemon shared by the read-only tests of a class.</summary>
public sealed class SharedDaemon : IAsyncLifetime
{
    internal DaemonProcess Daemon { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Daemon = await DaemonProcess.StartAsync();

    public async ValueTask DisposeAsync() => await Daemon.DisposeAsync();
}
