using System.Text.Json;
using System.Text.Json.Nodes;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>What an ADD did: the exact config list, the runtime arguments and the result. DEL repeats it from here.</summary>
public sealed record CniCacheEntry(CniNetworkConfigList Config, CniRuntimeConf Runtime, CniResult? Result)
{
    public string NetworkName => Config.Name;
}

/// <summary>
/// The result cache: one JSON file per attachment at <c>&lt;cacheDir&gt;/results/&lt;network&gt;-&lt;containerId&gt;-&lt;ifname&gt;</c>,
/// written atomically (temp file, fsync, rename), so DEL works after a daemon restart and a conf dir change.
/// </summary>
public sealed class CniResultCache
{
    private const string Kind = "nacelleCniCacheV1";

    public CniResultCache(string resultsDir)
    {
        ResultsDir = resultsDir;
    }

    public string ResultsDir { get; }

    public string PathFor(string network, string containerId, string ifName) =>
        Path.Combine(ResultsDir, $"{network}-{containerId}-{ifName}");

    public void Save(CniCacheEntry entry)
    {
        var runtime = entry.Runtime;
        var args = new JsonArray();
        foreach (var (key, value) in runtime.Args)
        {
            args.Add((JsonNode)new JsonArray(key, value));
        }

        var document = new JsonObject
        {
            ["kind"] = Kind,
            ["containerId"] = runtime.ContainerId,
            ["ifName"] = runtime.IfName,
            ["networkName"] = entry.NetworkName,
            ["netns"] = runtime.NetnsPath,
            ["cniArgs"] = args,
            ["capabilityArgs"] = runtime.CapabilityArgs.DeepClone(),
            ["configSource"] = entry.Config.Source,
            ["config"] = entry.Config.Raw.DeepClone(),
        };
        if (entry.Result is not null)
        {
            document["result"] = entry.Result.Raw.DeepClone();
        }

        Directory.CreateDirectory(ResultsDir);
        var path = PathFor(entry.NetworkName, runtime.ContainerId, runtime.IfName);
        var temp = Path.Combine(ResultsDir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
                   {
                       Mode = FileMode.CreateNew,
                       Access = FileAccess.Write,
                       UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                   }))
            {
                using (var writer = new Utf8JsonWriter(stream))
                {
                    document.WriteTo(writer);
                }

                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The entry of one attachment, or null when there is none. Throws Internal for an unreadable file.</summary>
    public CniCacheEntry? Load(string network, string containerId, string ifName)
    {
        var path = PathFor(network, containerId, ifName);
        return File.Exists(path) ? Read(path) : null;
    }

    /// <summary>
    /// Every cached attachment of <paramref name="containerId"/> on <paramref name="ifName"/> (any network). Unreadable files
    /// are reported through <paramref name="unreadable"/> and left out.
    /// </summary>
    public IReadOnlyList<CniCacheEntry> FindByContainer(string containerId, string ifName, Action<string, string>? unreadable = null)
    {
        if (!Directory.Exists(ResultsDir))
        {
            return [];
        }

        var suffix = $"-{containerId}-{ifName}";
        var entries = new List<CniCacheEntry>();
        foreach (var path in Directory.EnumerateFiles(ResultsDir).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (name.StartsWith('.') || !name.EndsWith(suffix, StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                var entry = Read(path);
                if (entry.Runtime.ContainerId == containerId && entry.Runtime.IfName == ifName)
                {
                    entries.Add(entry);
                }
            }
            catch (NacelleException e)
            {
                unreadable?.Invoke(path, e.Message);
            }
        }

        return entries;
    }

    public void Delete(string network, string containerId, string ifName) => TryDelete(PathFor(network, containerId, ifName));

    private static CniCacheEntry Read(string path)
    {
        try
        {
            if (JsonNode.Parse(File.ReadAllText(path)) is not JsonObject document
                || document["kind"]?.GetValue<string>() != Kind)
            {
                throw NacelleException.Internal($"CNI cache {path} is not a {Kind} document");
            }

            var config = CniNetworkConfigList.Parse(document["config"]!.ToJsonString(), "cache");
            var args = new List<KeyValuePair<string, string>>();
            foreach (var pair in document["cniArgs"]?.AsArray() ?? [])
            {
                var kv = pair!.AsArray();
                args.Add(new(kv[0]!.GetValue<string>(), kv[1]!.GetValue<string>()));
            }

            var runtime = new CniRuntimeConf(
                document["containerId"]!.GetValue<string>(),
                document["netns"]?.GetValue<string>() ?? "",
                document["ifName"]!.GetValue<string>(),
                args,
                document["capabilityArgs"] is JsonObject caps ? (JsonObject)caps.DeepClone() : []);
            var result = document["result"] is JsonObject r ? CniResult.Parse(r) : null;
            return new CniCacheEntry(config, runtime, result);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException
                                       or ArgumentOutOfRangeException or NacelleException { Kind: ErrorKind.InvalidArgument })
        {
            throw NacelleException.Internal($"CNI cache {path} is unreadable: {e.Message}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
