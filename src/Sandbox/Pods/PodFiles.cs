using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Nacelle.Common;

namespace Nacelle.Sandbox.Pods;

/// <summary>
/// A pod's DNS settings as kubelet gives them (CRI <c>DNSConfig</c>): name server IP addresses, search domains and
/// resolver options (<c>ndots:5</c>, <c>edns0</c>...).
/// </summary>
public sealed record PodDnsConfig(IReadOnlyList<string> Servers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options);

/// <summary>What the pod's files are made of: its DNS, hostname, addresses and whether it uses the node's network.</summary>
/// <param name="Dns">The pod's DNS configuration, or null to copy the host's resolv.conf.</param>
/// <param name="Hostname">The pod's hostname; null or empty means the host's hostname (kubelet sends none for host-network pods).</param>
/// <param name="PodIps">The pod's IP addresses (from CNI), each mapped to the hostname in <c>hosts</c>; none for host-network pods.</param>
/// <param name="HostNetwork">True when the pod shares the node's network namespace (its <c>hosts</c> is the host's).</param>
public sealed record PodFilesRequest(PodDnsConfig? Dns, string? Hostname, IReadOnlyList<string> PodIps, bool HostNetwork);

/// <summary>The files written for a pod (bind-mounted into its containers at /etc/resolv.conf, /etc/hostname, /etc/hosts).</summary>
public sealed record PodFilePaths(string ResolvConf, string Hostname, string Hosts);

/// <summary>Where the host's own files are read from; tests point these at temporary files.</summary>
public sealed record HostFileSources
{
    /// <summary>The host's resolver configuration, copied for pods without a DNS config.</summary>
    public string ResolvConfPath { get; init; } = "/etc/resolv.conf";

    /// <summary>The host's hosts file, copied for host-network pods.</summary>
    public string HostsPath { get; init; } = "/etc/hosts";

    /// <summary>The host's hostname (the kernel's UTS name of the daemon), used when a pod has none.</summary>
    public string HostnamePath { get; init; } = "/proc/sys/kernel/hostname";
}

/// <summary>
/// Writes the per-pod files every container of a pod shares: <c>resolv.conf</c>, <c>hostname</c> and <c>hosts</c> in
/// the pod directory, each atomically (temporary file, rename; mode 0644), and creates the pod's <c>shm</c>
/// directory. Everything is validated before anything is written, so a refused request leaves no file behind.
/// </summary>
/// <remarks>
/// The rules are kubelet's (and the API server's validation of <c>PodDNSConfig</c>) so that a refusal here names the
/// same limit a user would meet in Kubernetes: at most 3 name servers, each an IP address; at most 32 search domains
/// and 2048 characters for the search list joined by spaces; a hostname made of RFC 1123 labels (lower case letters,
/// digits and '-', 1-63 characters each) and at most 64 characters in all (the kernel's limit, which kubelet also
/// applies to an FQDN hostname when <c>setHostnameAsFQDN</c> is set).
/// </remarks>
public sealed class PodFiles(HostFileSources? sources = null)
{
    public const string ResolvConfFileName = "resolv.conf";
    public const string HostnameFileName = "hostname";
    public const string HostsFileName = "hosts";
    public const string ShmDirectoryName = "shm";

    /// <summary>The most name servers glibc uses (MAXNS); the API server refuses more.</summary>
    public const int MaxNameservers = 3;

    /// <summary>The most search domains kubelet passes (MaxDNSSearchPaths).</summary>
    public const int MaxSearches = 32;

    /// <summary>The longest search list, its domains joined by single spaces (MaxDNSSearchListChars).</summary>
    public const int MaxSearchListChars = 2048;

    /// <summary>The longest hostname the kernel takes (HOST_NAME_MAX; kubelet's hostnameMaxLen).</summary>
    public const int MaxHostnameLength = 64;

    /// <summary>The longest RFC 1123 label.</summary>
    public const int MaxLabelLength = 63;

    /// <summary>The header of a generated hosts file, as kubelet writes it for the pods it manages.</summary>
    public const string ManagedHostsHeader = "# Kubernetes-managed hosts file.\n";

    private static readonly UnixFileMode FileMode0644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly UnixFileMode DirectoryMode0755 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private readonly HostFileSources _sources = sources ?? new HostFileSources();

    /// <summary>
    /// Validates the request, then writes <c>resolv.conf</c>, <c>hostname</c> and <c>hosts</c> into
    /// <paramref name="podDirectory"/> (created if missing). Throws <see cref="NacelleException"/> with
    /// <see cref="ErrorKind.InvalidArgument"/> naming the field for an invalid request; nothing is written then.
    /// </summary>
    public PodFilePaths Write(string podDirectory, PodFilesRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(podDirectory);
        ArgumentNullException.ThrowIfNull(request);

        // Render everything first: validation failures must leave nothing behind.
        var resolvConf = request.Dns is null ? ReadHostFile(_sources.ResolvConfPath, missingAsEmpty: true) : RenderResolvConf(request.Dns);
        var hostname = ResolveHostname(request.Hostname);
        var hosts = request.HostNetwork
            ? ReadHostFile(_sources.HostsPath, missingAsEmpty: false) ?? RenderHosts(hostname, [])
            : RenderHosts(hostname, request.PodIps);
        if (request.HostNetwork)
        {
            ValidateIps(request.PodIps); // not written for a host-network pod, but still refused when malformed
        }

        Directory.CreateDirectory(podDirectory);
        var paths = new PodFilePaths(
            Path.Combine(podDirectory, ResolvConfFileName),
            Path.Combine(podDirectory, HostnameFileName),
            Path.Combine(podDirectory, HostsFileName));
        WriteAtomically(paths.ResolvConf, resolvConf ?? "");
        WriteAtomically(paths.Hostname, hostname + "\n");
        WriteAtomically(paths.Hosts, hosts);
        return paths;
    }

    /// <summary>
    /// Creates (mode 0755) and returns the directory the pod's <c>/dev/shm</c> tmpfs is mounted on,
    /// <c>&lt;podDirectory&gt;/shm</c>. The mount itself is not made here.
    /// </summary>
    public static string CreateShmDirectory(string podDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(podDirectory);
        var path = Path.Combine(podDirectory, ShmDirectoryName);
        Directory.CreateDirectory(path, DirectoryMode0755);
        return path;
    }

    /// <summary>The pod's hostname: the one given (validated), or the host's when none is given.</summary>
    public string ResolveHostname(string? hostname)
    {
        if (!string.IsNullOrEmpty(hostname))
        {
            ValidateHostname(hostname);
            return hostname;
        }

        string host;
        try
        {
            host = File.ReadAllText(_sources.HostnamePath).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NacelleException.Internal($"pod hostname: none given and the host's cannot be read from {_sources.HostnamePath}: {e.Message}", e);
        }

        if (host.Length == 0 || host.Any(char.IsWhiteSpace))
        {
            throw NacelleException.Internal($"pod hostname: none given and the host's ({_sources.HostnamePath}) is \"{host}\"");
        }

        return host;
    }

    /// <summary>
    /// The resolv.conf for a DNS config: one <c>nameserver</c> line per server, then one <c>search</c> line and one
    /// <c>options</c> line when there are any. Throws <see cref="ErrorKind.InvalidArgument"/> naming the field when the
    /// config breaks a rule (see the class remarks).
    /// </summary>
    public static string RenderResolvConf(PodDnsConfig dns)
    {
        ValidateDns(dns);
        var text = new StringBuilder();
        foreach (var server in dns.Servers)
        {
            text.Append("nameserver ").Append(server).Append('\n');
        }

        if (dns.Searches.Count > 0)
        {
            text.Append("search ").AppendJoin(' ', dns.Searches).Append('\n');
        }

        if (dns.Options.Count > 0)
        {
            text.Append("options ").AppendJoin(' ', dns.Options).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Refuses a DNS config kubelet would not produce (see the class remarks), naming the field.</summary>
    public static void ValidateDns(PodDnsConfig dns)
    {
        ArgumentNullException.ThrowIfNull(dns);
        if (dns.Servers.Count > MaxNameservers)
        {
            throw NacelleException.InvalidArgument(
                $"dns_config.servers: {dns.Servers.Count} name servers given, at most {MaxNameservers} are allowed");
        }

        for (var i = 0; i < dns.Servers.Count; i++)
        {
            if (!IsIpAddress(dns.Servers[i]))
            {
                throw NacelleException.InvalidArgument($"dns_config.servers[{i}]: \"{dns.Servers[i]}\" is not an IP address");
            }
        }

        if (dns.Searches.Count > MaxSearches)
        {
            throw NacelleException.InvalidArgument(
                $"dns_config.searches: {dns.Searches.Count} search domains given, at most {MaxSearches} are allowed");
        }

        for (var i = 0; i < dns.Searches.Count; i++)
        {
            if (!IsResolvWord(dns.Searches[i]))
            {
                throw NacelleException.InvalidArgument(
                    $"dns_config.searches[{i}]: \"{dns.Searches[i]}\" is not a search domain (empty, or contains white space or control characters)");
            }
        }

        var searchChars = dns.Searches.Sum(s => s.Length) + Math.Max(0, dns.Searches.Count - 1);
        if (searchChars > MaxSearchListChars)
        {
            throw NacelleException.InvalidArgument(
                $"dns_config.searches: the search list is {searchChars} characters long, at most {MaxSearchListChars} are allowed");
        }

        for (var i = 0; i < dns.Options.Count; i++)
        {
            if (!IsResolvWord(dns.Options[i]))
            {
                throw NacelleException.InvalidArgument(
                    $"dns_config.options[{i}]: \"{dns.Options[i]}\" is not a resolver option (empty, or contains white space or control characters)");
            }
        }
    }

    /// <summary>
    /// Refuses a hostname that is not RFC 1123 labels joined by dots (lower case letters, digits and '-', starting and
    /// ending with a letter or digit, 1-63 characters each) or is longer than 64 characters, naming the field.
    /// </summary>
    public static void ValidateHostname(string hostname)
    {
        ArgumentNullException.ThrowIfNull(hostname);
        if (hostname.Length > MaxHostnameLength)
        {
            throw NacelleException.InvalidArgument(
                $"hostname: \"{hostname}\" is {hostname.Length} characters long, at most {MaxHostnameLength} are allowed");
        }

        foreach (var label in hostname.Split('.'))
        {
            if (!IsDns1123Label(label))
            {
                throw NacelleException.InvalidArgument(
                    $"hostname: \"{hostname}\" is not a valid RFC 1123 hostname (each dot-separated label must be 1-{MaxLabelLength} " +
                    "lower case letters, digits or '-', starting and ending with a letter or digit)");
            }
        }
    }

    /// <summary>
    /// The hosts file of a pod with its own network namespace, as kubelet writes it: the loopback and IPv6 multicast
    /// names, then one <c>&lt;ip&gt;\t&lt;hostname&gt;</c> line per pod IP.
    /// </summary>
    public static string RenderHosts(string hostname, IReadOnlyList<string> podIps)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostname);
        ValidateIps(podIps);
        var text = new StringBuilder(ManagedHostsHeader)
            .Append("127.0.0.1\tlocalhost\n")
            .Append("::1\tlocalhost ip6-localhost ip6-loopback\n")
            .Append("fe00::0\tip6-localnet\n")
            .Append("fe00::0\tip6-mcastprefix\n")
            .Append("fe00::1\tip6-allnodes\n")
            .Append("fe00::2\tip6-allrouters\n");
        foreach (var ip in podIps)
        {
            text.Append(ip).Append('\t').Append(hostname).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// True for an IPv4 address in dotted-quad form (leading zeros tolerated, as kubelet's ParseIPSloppy does) or an
    /// IPv6 address without a zone; false for the shorthand forms <see cref="IPAddress.TryParse(string, out IPAddress)"/>
    /// also accepts ("1", "0x7f.1", "127.1").
    /// </summary>
    public static bool IsIpAddress(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        if (text.Contains(':'))
        {
            return !text.Contains('%') && !text.Contains('[') && !text.Contains('/')
                && IPAddress.TryParse(text, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6;
        }

        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        foreach (var part in parts)
        {
            if (part.Length is 0 or > 3 || !part.All(char.IsAsciiDigit)
                || int.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True for one RFC 1123 label: 1-63 of [a-z0-9-], starting and ending with [a-z0-9].</summary>
    public static bool IsDns1123Label(string label) =>
        label.Length is > 0 and <= MaxLabelLength
        && IsLowerAlphanumeric(label[0])
        && IsLowerAlphanumeric(label[^1])
        && label.All(c => IsLowerAlphanumeric(c) || c == '-');

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);

    private static void ValidateIps(IReadOnlyList<string> podIps)
    {
        ArgumentNullException.ThrowIfNull(podIps);
        for (var i = 0; i < podIps.Count; i++)
        {
            if (!IsIpAddress(podIps[i]))
            {
                throw NacelleException.InvalidArgument($"pod ips[{i}]: \"{podIps[i]}\" is not an IP address");
            }
        }
    }

    // A word of a resolv.conf line: non-empty, no white space (the separator), no control characters.
    private static bool IsResolvWord(string? word) =>
        !string.IsNullOrEmpty(word) && !word.Any(c => char.IsWhiteSpace(c) || char.IsControl(c));

    // The host's file, or (when missing) "" for resolv.conf (glibc then uses a name server on localhost, as with an
    // empty file) and null for hosts (the caller writes the default localhost entries).
    private static string? ReadHostFile(string path, bool missingAsEmpty)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return missingAsEmpty ? "" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NacelleException.Internal($"cannot read the host's {path}: {e.Message}", e);
        }
    }

    // Temporary file in the same directory, mode 0644 whatever the umask, then renamed over the target: a reader sees the
    // old file or the new one, never a torn one. Not fsynced: the pod directory is volatile state (under /run), and a
    // machine crash, the only thing an fsync guards against, ends the pod with it.
    private static void WriteAtomically(string path, string content)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode0644 };
            using (var file = new FileStream(temp, options))
            {
                file.Write(Encoding.UTF8.GetBytes(content));
            }

            File.SetUnixFileMode(temp, FileMode0644);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Best effort: the temporary name is never read.
            }

            throw NacelleException.Internal($"cannot write {path}: {e.Message}", e);
        }
    }
}
