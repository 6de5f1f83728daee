using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>A configuration file that was not used, and why.</summary>
public sealed record CniConfigSkip(string Path, string Reason)
{
    public override string ToString() => $"{System.IO.Path.GetFileName(Path)}: {Reason}";
}

/// <summary>The outcome of scanning a conf dir: the first valid network (if any) and every file skipped before it.</summary>
public sealed record CniConfigLoadResult(CniNetworkConfigList? Network, IReadOnlyList<CniConfigSkip> Skipped, string? DirectoryProblem)
{
    /// <summary>One line naming the skipped files and their reasons (for a Status message), empty when none were skipped.</summary>
    public string SkippedSummary => string.Join("; ", Skipped.Select(s => s.ToString()));
}

/// <summary>
/// Reads the conf dir as containerd and CRI-O do: <c>*.conf</c>, <c>*.conflist</c> and <c>*.json</c> in lexical (ordinal)
/// order; the first valid file is the pod network. Invalid files are skipped with a reason.
/// </summary>
public static class CniConfigLoader
{
    private static readonly string[] Extensions = [".conf", ".conflist", ".json"];

    /// <summary>Largest configuration file read (a conf dir is not a place for big files).</summary>
    public const long MaxFileBytes = 1 << 20;

    /// <summary>The configuration files of <paramref name="confDir"/> in the order they are tried.</summary>
    public static IReadOnlyList<string> ConfigFiles(string confDir)
    {
        if (!Directory.Exists(confDir))
        {
            return [];
        }

        var files = new List<string>();
        foreach (var path in Directory.EnumerateFiles(confDir))
        {
            var extension = Path.GetExtension(path);
            if (Extensions.Contains(extension, StringComparer.Ordinal))
            {
                files.Add(path);
            }
        }

        files.Sort(StringComparer.Ordinal);
        return files;
    }

    public static CniConfigLoadResult Load(string confDir)
    {
        if (!Directory.Exists(confDir))
        {
            return new CniConfigLoadResult(null, [], $"conf dir {confDir} does not exist");
        }

        var skipped = new List<CniConfigSkip>();
        IReadOnlyList<string> files;
        try
        {
            files = ConfigFiles(confDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new CniConfigLoadResult(null, [], $"cannot list conf dir {confDir}: {e.Message}");
        }

        foreach (var path in files)
        {
            try
            {
                return new CniConfigLoadResult(LoadFile(path), skipped, null);
            }
            catch (NacelleException e)
            {
                skipped.Add(new CniConfigSkip(path, StripSource(e.Message, path)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                skipped.Add(new CniConfigSkip(path, "cannot read: " + e.Message));
            }
        }

        return new CniConfigLoadResult(null, skipped, files.Count == 0 ? $"no network config found in {confDir}" : null);
    }

    /// <summary>Reads and validates one configuration file (throws <see cref="NacelleException"/> when invalid).</summary>
    public static CniNetworkConfigList LoadFile(string path)
    {
        var info = new FileInfo(path);
        if (info.Length == 0)
        {
            throw NacelleException.InvalidArgument($"{path}: the file is empty");
        }

        if (info.Length > MaxFileBytes)
        {
            throw NacelleException.InvalidArgument($"{path}: the file is larger than {MaxFileBytes} bytes");
        }

        return CniNetworkConfigList.Parse(File.ReadAllText(path), path);
    }

    private static string StripSource(string message, string path)
    {
        var prefix = path + ": ";
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
    }
}
