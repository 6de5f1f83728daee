using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Nacelle.ContainerCore.Interop;
using Nacelle.ImageService.Layers;
using Nacelle.ImageService.Snapshots;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The pull benchmark's floor and its profile. The floor: the time to inflate and hash (blob digest of the compressed
/// bytes, diff id of the tar) every layer of the image from memory, all layers at once, with the fastest inflater on
/// this machine and nothing written. The profile: each stage of a pull alone, single-threaded over all layers.
/// </summary>
internal static class PullStages
{
    /// <summary>The inflaters to compare: .NET's GZipStream (zlib-ng) and nacelle's layer inflater (ISA-L when present).</summary>
    public static IReadOnlyList<(string Name, Func<Stream, Stream> Open)> Inflaters { get; } =
    [
        ("zlib-ng (System.IO.Compression)", s => new GZipStream(s, CompressionMode.Decompress)),
        ($"nacelle layer inflater ({LayerStreams.GzipImplementation})", s => LayerStreams.OpenGzip(s)),
    ];

    /// <summary>Inflates and hashes every blob on its own thread pool task; returns the wall time in ms.</summary>
    public static double Floor(IReadOnlyList<byte[]> blobs, Func<Stream, Stream> inflater)
    {
        var start = Stopwatch.GetTimestamp();
        Parallel.For(0, blobs.Count, new ParallelOptions { MaxDegreeOfParallelism = blobs.Count }, i => InflateAndHash(blobs[i], inflater));
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The median floor over <paramref name="iterations"/> runs with the fastest inflater, and its name.</summary>
    public static (Samples Samples, string Inflater) MeasureFloor(IReadOnlyList<byte[]> blobs, int iterations)
    {
        (Samples Samples, string Inflater)? best = null;
        foreach (var (name, open) in Inflaters)
        {
            Floor(blobs, open); // warm-up
            var samples = new Samples();
            for (var i = 0; i < iterations; i++)
            {
                samples.Add(Floor(blobs, open));
            }

            Console.Error.WriteLine(FormattableString.Invariant($"floor with {name}: median {samples.Median:F0} ms"));
            if (best is null || samples.Median < best.Value.Samples.Median)
            {
                best = (samples, name);
            }
        }

        return best!.Value;
    }

    /// <summary>Prints the profile table: each stage alone, single-threaded, over all layers (median of 3).</summary>
    public static async Task PrintProfileAsync(IReadOnlyList<byte[]> blobs, string scratch, Func<Task<double>> downloadAll)
    {
        var tars = blobs.Select(b => Inflate(b, Inflaters[0].Open)).ToList();
        var rows = new List<(string Stage, (double Wall, double Cpu) Ms, string Note)>
        {
            ("download (HTTP GET of every layer, 3 at a time, to a null sink)", Median(3, () => Time(() => downloadAll().GetAwaiter().GetResult())), "loopback registry; its CPU not counted"),
            ("sha256 of the compressed blobs", Median(3, () => Time(() => ForAll(blobs, b => SHA256.HashData(b)))), "blob digests"),
        };
        foreach (var (name, open) in Inflaters)
        {
            rows.Add(($"inflate with {name}", Median(3, () => Time(() => ForAll(blobs, b => Inflate(b, open, keep: false)))), "to a null sink"));
        }

        rows.Add(("sha256 of the tar streams", Median(3, () => Time(() => tars.ForEach(t => SHA256.HashData(t)))), "diff ids"));
        rows.Add(("tar parse (TarReader, data to a null sink)", Median(3, () => Time(() => tars.ForEach(ParseTar))), "no files"));
        var unpack = new List<(double, double)>();
        var sync = new List<(double, double)>();
        var measure = new List<(double, double)>();

        // Like the store's snapshots/: a top directory for ext4's allocator (see SnapshotStore).
        var layers = Directory.CreateDirectory(Path.Combine(scratch, $"profile-layers-{Guid.NewGuid():N}")).FullName;
        if (DirectoryCalls.GetInodeFlags(layers) is { } flags)
        {
            DirectoryCalls.SetInodeFlags(layers, flags | DirectoryCalls.TopDirectoryFlag);
        }

        for (var r = 0; r < 3; r++)
        {
            var dirs = new List<string>();
            unpack.Add(Time(() =>
            {
                foreach (var tar in tars)
                {
                    var dir = Directory.CreateDirectory(Path.Combine(layers, $"unpack-{Guid.NewGuid():N}")).FullName;
                    dirs.Add(dir);
                    LayerUnpacker.Unpack(new MemoryStream(tar, writable: false), dir, CancellationToken.None);
                }
            }));
            sync.Add(Time(() => DirectoryCalls.SyncFileSystem(scratch)));
            measure.Add(Time(() => dirs.ForEach(d => DiskUsage.Measure(d))));
            dirs.ForEach(d => Directory.Delete(d, recursive: true)); // root may delete in read-only directories
            DirectoryCalls.SyncFileSystem(scratch);
        }

        Directory.Delete(layers);

        rows.Add(("unpack from the tar (diff id hash + tar + files: create, write, start writeback, chown, chmod, times)", unpack.OrderBy(u => u.Item1).ElementAt(1), $"{tars.Sum(t => (long)t.Length) / 1e6:F0} MB of tar into the page cache"));
        rows.Add(("syncfs after the unpack (the durability of the layer files)", sync.OrderBy(u => u.Item1).ElementAt(1), "waits for the disk (writeback started per file)"));
        rows.Add(("disk usage walk of the unpacked layers (ImageFsInfo's numbers)", measure.OrderBy(u => u.Item1).ElementAt(1), "statx per inode"));

        Console.WriteLine("## Where a pull spends its time: each stage alone, one thread, all layers (median of 3 by wall time)");
        Console.WriteLine();
        Console.WriteLine("CPU: user + system time of this process during the stage (on a loaded machine wall time also counts waiting for a core).");
        Console.WriteLine();
        Table.Header("stage", "wall ms", "cpu ms", "note");
        foreach (var (stage, ms, note) in rows)
        {
            Table.Row(stage, Table.F(ms.Wall, 0), Table.F(ms.Cpu, 0), note);
        }

        Console.WriteLine();
    }

    private static void InflateAndHash(byte[] blob, Func<Stream, Stream> inflater)
    {
        using var blobHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var tarHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        blobHash.AppendData(blob);
        using var inflate = inflater(new MemoryStream(blob, writable: false));
        var buffer = new byte[1 << 20];
        int n;
        while ((n = inflate.Read(buffer)) > 0)
        {
            tarHash.AppendData(buffer.AsSpan(0, n));
        }

        _ = blobHash.GetHashAndReset();
        _ = tarHash.GetHashAndReset();
    }

    private static byte[] Inflate(byte[] blob, Func<Stream, Stream> inflater, bool keep = true)
    {
        using var inflate = inflater(new MemoryStream(blob, writable: false));
        var output = keep ? new MemoryStream() : Stream.Null;
        inflate.CopyTo(output, 1 << 20);
        return keep ? ((MemoryStream)output).ToArray() : [];
    }

    private static void ParseTar(byte[] tar)
    {
        using var reader = new TarReader(new MemoryStream(tar, writable: false));
        while (reader.GetNextEntry() is { } entry)
        {
            entry.DataStream?.CopyTo(Stream.Null);
        }
    }

    private static void ForAll(IReadOnlyList<byte[]> items, Action<byte[]> action)
    {
        foreach (var item in items)
        {
            action(item);
        }
    }

    private static (double Wall, double Cpu) Time(Action action)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var start = Stopwatch.GetTimestamp();
        action();
        return (Stopwatch.GetElapsedTime(start).TotalMilliseconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds);
    }

    private static (double Wall, double Cpu) Median(int runs, Func<(double Wall, double Cpu)> run)
    {
        var values = Enumerable.Range(0, runs).Select(_ => run()).OrderBy(v => v.Wall).ToList();
        return values[values.Count / 2];
    }
}
