using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Nacelle.ImageService.Manifests;
using Nacelle.ImageService.References;
using Nacelle.ImageService.Registry;

namespace Nacelle.Tests.Kernel.Registry;

/// <summary>A logger that keeps every formatted line, so tests can assert what was (and was not) logged.</summary>
internal sealed class CapturingLogger : ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public string All => string.Join('\n', _lines);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _lines.Enqueue($"{logLevel} {eventId.Id} {formatter(state, exception)}");
}

internal static class RegistryTestKit
{
    public static RegistryClient Client(CapturingLogger logger, RegistryOptions? options = null, Platform? platform = null) =>
        new(options ?? new RegistryOptions { InitialBackoff = TimeSpan.FromMilliseconds(20) }, platform ?? Platform.Current, logger);

    public static ImageReference Ref(string host, string repository, string tagOrDigest) =>
        ImageReference.Parse(tagOrDigest.StartsWith("sha256:", StringComparison.Ordinal)
            ? $"{host}/{repository}@{tagOrDigest}"
            : $"{host}/{repository}:{tagOrDigest}");

    public static async Task<byte[]> DownloadAsync(RegistryClient client, ImageReference reference, Descriptor blob,
        RegistryCredentials? credentials = null)
    {
        using var output = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await client.DownloadBlobAsync(reference, blob, credentials, output, timeout.Token);
        return output.ToArray();
    }

    public static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public static CancellationToken Timeout(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
