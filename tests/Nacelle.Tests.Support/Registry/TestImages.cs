using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Nacelle.Tests.Support.Registry;

/// <summary>How a test layer blob is compressed.</summary>
public enum LayerCompression
{
    /// <summary>Plain tar.</summary>
    None,
    /// <summary>gzip.</summary>
    Gzip,
    /// <summary>zstd (made with /usr/bin/zstd).</summary>
    Zstd,
}

/// <summary>
/// A layer ready to push: the blob (in memory or in a file), its media type, digest, size and the diff id
/// (digest of the uncompressed tar).
/// </summary>
public sealed class TestLayer
{
    private TestLayer(string mediaType, string digest, string diffId, long size, byte[]? blob, string? blobPath)
    {
        MediaType = mediaType;
        Digest = digest;
        DiffId = diffId;
        Size = size;
        Blob = blob;
        BlobPath = blobPath;
    }

    /// <summary>The layer media type.</summary>
    public string MediaType { get; }
    /// <summary>The blob digest.</summary>
    public string Digest { get; }
    /// <summary>The digest of the uncompressed tar (rootfs.diff_ids).</summary>
    public string DiffId { get; }
    /// <summary>The blob size in bytes.</summary>
    public long Size { get; }
    /// <summary>The blob bytes when held in memory.</summary>
    public byte[]? Blob { get; }
    /// <summary>The blob file when streamed from disk.</summary>
    public string? BlobPath { get; }

    /// <summary>Compresses <paramref name="tar"/> and describes it with the OCI or Docker media type.</summary>
    public static TestLayer Create(byte[] tar, LayerCompression compression = LayerCompression.Gzip, bool dockerMediaType = false)
    {
        byte[] blob = compression switch
        {
            LayerCompression.None => tar,
            LayerCompression.Gzip => TestImages.Gzip(tar),
            LayerCompression.Zstd => TestImages.Zstd(tar),
            _ => throw new ArgumentOutOfRangeException(nameof(compression)),
        };
        string mediaType = (compression, dockerMediaType) switch
        {
            (LayerCompression.Gzip, true) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (_, true) => throw new ArgumentException("Docker media types have gzip layers only", nameof(dockerMediaType)),
            (LayerCompression.None, _) => "application/vnd.oci.image.layer.v1.tar",
            (LayerCompression.Gzip, _) => "application/vnd.oci.image.layer.v1.tar+gzip",
            _ => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        return new TestLayer(mediaType, OciPusher.Digest(blob), OciPusher.Digest(tar), blob.LongLength, blob, null);
    }

    /// <summary>An uncompressed tar layer streamed from <paramref name="tarPath"/> (not read into memory).</summary>
    public static TestLayer FromTarFile(string tarPath)
    {
        string digest = OciPusher.DigestOfFile(tarPath);
        return new TestLayer("application/vnd.oci.image.layer.v1.tar", digest, digest, new FileInfo(tarPath).Length, null, tarPath);
    }
}

/// <summary>What defines a test image: platform, config fields, layers and the media type family.</summary>
public sealed class TestImageSpec
{
    /// <summary>GOARCH architecture (amd64, arm64...); defaults to this machine's, which is what /usr/bin/busybox runs on.</summary>
    public string Architecture { get; init; } = TestImages.HostArchitecture;
    /// <summary>Platform variant (v8 for arm64), or null.</summary>
    public string? Variant { get; init; }
    /// <summary>Use Docker schema 2 media types instead of OCI.</summary>
    public bool DockerMediaTypes { get; init; }
    /// <summary>config.User, or null.</summary>
    public string? User { get; init; }
    /// <summary>config.Cmd.</summary>
    public IReadOnlyList<string> Cmd { get; init; } = ["/bin/sh"];
    /// <summary>config.Entrypoint, or null.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }
    /// <summary>config.Env.</summary>
    public IReadOnlyList<string> Env { get; init; } = [TestImages.DefaultPath];
    /// <summary>config.WorkingDir, or null.</summary>
    public string? WorkingDir { get; init; }
    /// <summary>config.Labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    /// <summary>config.StopSignal, or null.</summary>
    public string? StopSignal { get; init; }
    /// <summary>The layers, base first.</summary>
    public required IReadOnlyList<TestLayer> Layers { get; init; }
}

/// <summary>What was pushed for one image manifest.</summary>
/// <param name="Repository">The repository (without host).</param>
/// <param name="Tag">The tag, or null when pushed by digest only.</param>
/// <param name="ManifestDigest">The manifest digest.</param>
/// <param name="ManifestMediaType">The manifest media type.</param>
/// <param name="ManifestBytes">The manifest as pushed.</param>
/// <param name="ConfigDigest">The config blob digest (the image id).</param>
/// <param name="ConfigBytes">The config as pushed.</param>
/// <param name="Layers">The layers, base first.</param>
public sealed record PushedImage(string Repository, string? Tag, string ManifestDigest, string ManifestMediaType, byte[] ManifestBytes,
    string ConfigDigest, byte[] ConfigBytes, IReadOnlyList<TestLayer> Layers)
{
    /// <summary>The diff ids in order.</summary>
    public IReadOnlyList<string> DiffIds => [.. Layers.Select(l => l.DiffId)];
    /// <summary>The layer blob digests in order.</summary>
    public IReadOnlyList<string> LayerDigests => [.. Layers.Select(l => l.Digest)];
}

/// <summary>What was pushed for an index / manifest list.</summary>
/// <param name="Repository">The repository (without host).</param>
/// <param name="Tag">The tag of the index.</param>
/// <param name="IndexDigest">The index digest (what the tag resolves to).</param>
/// <param name="IndexMediaType">OCI index or Docker manifest list.</param>
/// <param name="Amd64">The linux/amd64 image (busybox).</param>
/// <param name="Arm64">The linux/arm64/v8 image (a dummy layer).</param>
public sealed record PushedIndex(string Repository, string Tag, string IndexDigest, string IndexMediaType, PushedImage Amd64, PushedImage Arm64);

/// <summary>
/// Builds and pushes test images from Debian's busybox-static (<c>/usr/bin/busybox</c>): a deterministic busybox layer
/// with applet symlinks and /etc/passwd, /etc/group (root, nobody 65534, tester 1000), plus multi-layer, multi-platform,
/// zstd and large-layer variants.
/// </summary>
public static class TestImages
{
    /// <summary>The busybox binary (package busybox-static).</summary>
    public const string BusyboxBinary = "/usr/bin/busybox";

    /// <summary>This machine's architecture in OCI (GOARCH) terms.</summary>
    public static string HostArchitecture => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>The PATH every test image sets.</summary>
    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The applets linked to /bin/busybox in the busybox layer.</summary>
    public static readonly IReadOnlyList<string> Applets =
    [
        "sh", "ash", "ls", "cat", "echo", "sleep", "id", "true", "false", "env", "ps", "mkdir", "rm", "rmdir", "touch", "wc",
        "head", "tail", "hostname", "grep", "sed", "test", "kill", "stat", "pwd", "whoami", "readlink", "ln", "cp", "mv",
        "chmod", "chown", "date", "uname", "yes", "printf", "mount", "umount", "nc", "wget", "tee", "dd", "seq", "sort",
        "uniq", "cut", "tr", "find", "xargs", "sync", "df", "du", "free", "top", "nproc", "timeout", "mkfifo", "ip", "ping",
        "nslookup", "sha256sum", "md5sum", "base64", "awk", "expr", "basename", "dirname", "realpath", "tar", "gzip",
        "gunzip", "zcat", "vi", "less", "more", "ifconfig", "route", "netstat", "hexdump", "od", "strings", "which",
        "stty", "tty", "httpd",
    ];

    /// <summary>/etc/passwd of the busybox layer.</summary>
    public const string Passwd =
        "root:x:0:0:root:/root:/bin/sh\n" +
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
        "tester:x:1000:1000:tester:/home/tester:/bin/sh\n";

    /// <summary>/etc/group of the busybox layer.</summary>
    public const string Group =
        "root:x:0:\n" +
        "nogroup:x:65534:\n" +
        "tester:x:1000:\n";

    private static readonly Lazy<byte[]> s_busyboxTar = new(BuildBusyboxTar);

    /// <summary>The uncompressed busybox layer tar (deterministic).</summary>
    public static byte[] BusyboxTar => s_busyboxTar.Value;

    /// <summary>The busybox layer, compressed as asked.</summary>
    public static TestLayer BusyboxLayer(LayerCompression compression = LayerCompression.Gzip, bool dockerMediaType = false) =>
        TestLayer.Create(BusyboxTar, compression, dockerMediaType);

    private static byte[] BuildBusyboxTar()
    {
        byte[] busybox = File.ReadAllBytes(BusyboxBinary);
        return TarBuilder.Build(t =>
        {
            t.Directory("bin").File("bin/busybox", busybox, 0b111_101_101);
            foreach (string applet in Applets)
                t.Symlink("bin/" + applet, "busybox");
            t.Directory("dev").Directory("proc").Directory("sys").Directory("run")
                .Directory("etc")
                .File("etc/passwd", Encoding.ASCII.GetBytes(Passwd))
                .File("etc/group", Encoding.ASCII.GetBytes(Group))
                .File("etc/hostname", Encoding.ASCII.GetBytes("busybox\n"))
                .Directory("root", 0b111_000_000)
                .Directory("home")
                .Directory("home/tester", 0b111_101_101, 1000, 1000)
                .Directory("tmp", 0b1_111_111_111)
                .Directory("usr").Directory("usr/bin").Directory("var").Directory("var/tmp", 0b1_111_111_111);
        });
    }

    /// <summary>gzip (deterministic: no name, no mtime in the header).</summary>
    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
            gz.Write(data);
        return output.ToArray();
    }

    /// <summary>zstd, by piping through <c>/usr/bin/zstd</c>.</summary>
    public static byte[] Zstd(byte[] data)
    {
        var psi = new ProcessStartInfo("/usr/bin/zstd")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "-q", "-c", "-3" })
            psi.ArgumentList.Add(arg);
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start /usr/bin/zstd");
        using var output = new MemoryStream();
        Task copy = p.StandardOutput.BaseStream.CopyToAsync(output);
        Task<string> errors = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(data);
        p.StandardInput.Close();
        copy.GetAwaiter().GetResult();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"zstd failed ({p.ExitCode}): {errors.GetAwaiter().GetResult()}");
        return output.ToArray();
    }

    /// <summary>The config JSON of <paramref name="spec"/> (deterministic).</summary>
    public static byte[] BuildConfig(TestImageSpec spec)
    {
        var config = new JsonObject
        {
            ["Env"] = new JsonArray([.. spec.Env.Select(e => (JsonNode?)JsonValue.Create(e))]),
            ["Cmd"] = new JsonArray([.. spec.Cmd.Select(e => (JsonNode?)JsonValue.Create(e))]),
        };
        if (spec.Entrypoint is not null)
            config["Entrypoint"] = new JsonArray([.. spec.Entrypoint.Select(e => (JsonNode?)JsonValue.Create(e))]);
        if (spec.User is not null)
            config["User"] = spec.User;
        if (spec.WorkingDir is not null)
            config["WorkingDir"] = spec.WorkingDir;
        if (spec.StopSignal is not null)
            config["StopSignal"] = spec.StopSignal;
        if (spec.Labels.Count > 0)
        {
            var labels = new JsonObject();
            foreach ((string k, string v) in spec.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
                labels[k] = v;
            config["Labels"] = labels;
        }
        var root = new JsonObject
        {
            ["created"] = TarBuilder.FixedTime.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["architecture"] = spec.Architecture,
            ["os"] = "linux",
        };
        if (spec.Variant is not null)
            root["variant"] = spec.Variant;
        root["config"] = config;
        root["rootfs"] = new JsonObject
        {
            ["type"] = "layers",
            ["diff_ids"] = new JsonArray([.. spec.Layers.Select(l => (JsonNode?)JsonValue.Create(l.DiffId))]),
        };
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    /// <summary>Pushes the layers, the config and the manifest; tags it when <paramref name="tag"/> is given (else pushes by digest).</summary>
    public static async Task<PushedImage> PushImageAsync(OciPusher pusher, string repository, string? tag, TestImageSpec spec,
        CancellationToken cancellationToken = default)
    {
        foreach (TestLayer layer in spec.Layers)
        {
            if (layer.Blob is not null)
                await pusher.PushBlobAsync(repository, layer.Blob, cancellationToken).ConfigureAwait(false);
            else
                await pusher.PushBlobFileAsync(repository, layer.BlobPath!, cancellationToken).ConfigureAwait(false);
        }
        byte[] config = BuildConfig(spec);
        string configDigest = await pusher.PushBlobAsync(repository, config, cancellationToken).ConfigureAwait(false);
        string manifestType = spec.DockerMediaTypes ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json";
        string configType = spec.DockerMediaTypes ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json";
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = manifestType,
            ["config"] = new JsonObject { ["mediaType"] = configType, ["digest"] = configDigest, ["size"] = config.Length },
            ["layers"] = new JsonArray([.. spec.Layers.Select(l => (JsonNode?)new JsonObject
            {
                ["mediaType"] = l.MediaType,
                ["digest"] = l.Digest,
                ["size"] = l.Size,
            })]),
        };
        byte[] body = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        string digest = OciPusher.Digest(body);
        await pusher.PushManifestAsync(repository, tag ?? digest, manifestType, body, cancellationToken).ConfigureAwait(false);
        return new PushedImage(repository, tag, digest, manifestType, body, configDigest, config, spec.Layers);
    }

    /// <summary>Pushes the single-layer busybox image (for this machine's architecture).</summary>
    public static Task<PushedImage> PushBusyboxAsync(OciPusher pusher, string repository, string tag = "latest",
        LayerCompression compression = LayerCompression.Gzip, string? user = null, CancellationToken cancellationToken = default) =>
        PushImageAsync(pusher, repository, tag, new TestImageSpec { Layers = [BusyboxLayer(compression)], User = user }, cancellationToken);

    /// <summary>
    /// Pushes a three-layer image: busybox; a layer adding /data/keep, /data/remove-me and /opaque/old; a layer that
    /// whites out /data/remove-me (<c>.wh.remove-me</c>), makes /opaque opaque (<c>.wh..wh..opq</c>) adding /opaque/new,
    /// and adds /data/added.
    /// </summary>
    public static Task<PushedImage> PushWhiteoutImageAsync(OciPusher pusher, string repository, string tag = "whiteouts",
        CancellationToken cancellationToken = default)
    {
        byte[] second = TarBuilder.Build(t => t
            .Directory("data").File("data/keep", "keep\n"u8.ToArray()).File("data/remove-me", "remove me\n"u8.ToArray())
            .Directory("opaque").File("opaque/old", "old\n"u8.ToArray()).Directory("opaque/olddir").File("opaque/olddir/f", "f\n"u8.ToArray()));
        byte[] third = TarBuilder.Build(t => t
            .Directory("data").Whiteout("data/remove-me").File("data/added", "added\n"u8.ToArray())
            .Directory("opaque").Opaque("opaque").File("opaque/new", "new\n"u8.ToArray()));
        var spec = new TestImageSpec { Layers = [BusyboxLayer(), TestLayer.Create(second), TestLayer.Create(third)] };
        return PushImageAsync(pusher, repository, tag, spec, cancellationToken);
    }

    /// <summary>
    /// Pushes an index (OCI) or manifest list (Docker media types) with linux/amd64 (busybox) and linux/arm64/v8
    /// (a dummy layer holding /arm64), tagged <paramref name="tag"/>; the platform manifests are pushed by digest.
    /// </summary>
    public static async Task<PushedIndex> PushMultiPlatformAsync(OciPusher pusher, string repository, string tag = "multi",
        bool dockerMediaTypes = false, CancellationToken cancellationToken = default)
    {
        PushedImage amd64 = await PushImageAsync(pusher, repository, null, new TestImageSpec
        {
            Architecture = "amd64",
            DockerMediaTypes = dockerMediaTypes,
            Layers = [BusyboxLayer(LayerCompression.Gzip, dockerMediaTypes)],
        }, cancellationToken).ConfigureAwait(false);
        byte[] dummy = TarBuilder.Build(t => t.File("arm64", "this is the arm64 image\n"u8.ToArray()));
        PushedImage arm64 = await PushImageAsync(pusher, repository, null, new TestImageSpec
        {
            Architecture = "arm64",
            Variant = "v8",
            DockerMediaTypes = dockerMediaTypes,
            Layers = [TestLayer.Create(dummy, LayerCompression.Gzip, dockerMediaTypes)],
        }, cancellationToken).ConfigureAwait(false);

        string indexType = dockerMediaTypes ? "application/vnd.docker.distribution.manifest.list.v2+json" : "application/vnd.oci.image.index.v1+json";
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = indexType,
            ["manifests"] = new JsonArray(
                Entry(arm64, new JsonObject { ["architecture"] = "arm64", ["os"] = "linux", ["variant"] = "v8" }),
                Entry(amd64, new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" })),
        };
        byte[] body = Encoding.UTF8.GetBytes(index.ToJsonString());
        string digest = await pusher.PushManifestAsync(repository, tag, indexType, body, cancellationToken).ConfigureAwait(false);
        return new PushedIndex(repository, tag, digest, indexType, amd64, arm64);

        static JsonObject Entry(PushedImage image, JsonObject platform) => new()
        {
            ["mediaType"] = image.ManifestMediaType,
            ["digest"] = image.ManifestDigest,
            ["size"] = image.ManifestBytes.Length,
            ["platform"] = platform,
        };
    }

    /// <summary>
    /// Pushes busybox plus one uncompressed layer holding /big.bin of <paramref name="bytes"/> incompressible
    /// pseudo-random bytes (seeded, so reproducible). The tar is written to a temp file and streamed; the file is
    /// deleted after the push.
    /// </summary>
    public static async Task<PushedImage> PushLargeLayerImageAsync(OciPusher pusher, string repository, string tag = "large",
        long bytes = 100L * 1024 * 1024, CancellationToken cancellationToken = default)
    {
        string dir = Directory.CreateTempSubdirectory("nacelle-large-layer-").FullName;
        try
        {
            string tarPath = Path.Combine(dir, "layer.tar");
            using (FileStream output = File.Create(tarPath))
            using (var builder = new TarBuilder(output))
            using (var random = new PseudoRandomStream(bytes, seed: 42))
                builder.File("big.bin", random);
            var spec = new TestImageSpec { Layers = [BusyboxLayer(), TestLayer.FromTarFile(tarPath)] };
            return await PushImageAsync(pusher, repository, tag, spec, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A seekable read-only stream of <c>length</c> seeded pseudo-random bytes (never held in memory).</summary>
    private sealed class PseudoRandomStream(long length, int seed) : Stream
    {
        private readonly Random _random = new(seed);
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set
            {
                if (value != _position)
                    throw new NotSupportedException("sequential reads only");
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = (int)Math.Min(buffer.Length, length - _position);
            _random.NextBytes(buffer[..n]);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            long target = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => length + offset };
            Position = target;
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The sha256 digest of a stream's remaining bytes.</summary>
    public static string Sha256(Stream stream) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
}
