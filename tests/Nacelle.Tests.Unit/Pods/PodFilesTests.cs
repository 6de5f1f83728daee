using Nacelle.Common;
using Nacelle.Sandbox.Pods;

namespace Nacelle.Tests.Unit.Pods;

/// <summary>The per-pod resolv.conf, hostname and hosts files and the shm directory: kubelet's rules, atomic 0644 files.</summary>
public sealed class PodFilesTests : IDisposable
{
    private const UnixFileMode Mode0644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly string _root = Directory.CreateTempSubdirectory("nacelle-podfiles-").FullName;
    private readonly string _podDir;
    private readonly HostFileSources _host;

    public PodFilesTests()
    {
        _podDir = Path.Combine(_root, "pods", "abc");
        var hostDir = Path.Combine(_root, "host");
        Directory.CreateDirectory(hostDir);
        _host = new HostFileSources
        {
            ResolvConfPath = Path.Combine(hostDir, "resolv.conf"),
            HostsPath = Path.Combine(hostDir, "hosts"),
            HostnamePath = Path.Combine(hostDir, "hostname"),
        };
        File.WriteAllText(_host.ResolvConfPath, "# host\nnameserver 192.0.2.53\nsearch corp.example\n");
        File.WriteAllText(_host.HostsPath, "127.0.0.1 localhost\n192.0.2.7 node-1.corp.example node-1\n");
        File.WriteAllText(_host.HostnamePath, "node-1\n");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private PodFiles Files() => new(_host);

    private static PodDnsConfig Dns(string[]? servers = null, string[]? searches = null, string[]? options = null) =>
        new(servers ?? [], searches ?? [], options ?? []);

    private static PodFilesRequest Request(PodDnsConfig? dns = null, string? hostname = "web-0", string[]? ips = null, bool hostNetwork = false) =>
        new(dns, hostname, ips ?? ["10.88.0.5"], hostNetwork);

    private string Read(string name) => File.ReadAllText(Path.Combine(_podDir, name));

    // ---------------------------------------------------------------- resolv.conf

    [Fact]
    public void ResolvConfHasOneNameserverLinePerServerThenOneSearchAndOneOptionsLine()
    {
        var dns = Dns(["10.96.0.10", "2001:db8::53"], ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"], ["ndots:5", "edns0"]);
        Files().Write(_podDir, Request(dns));
        Assert.Equal(
            "nameserver 10.96.0.10\nnameserver 2001:db8::53\n" +
            "search default.svc.cluster.local svc.cluster.local cluster.local\n" +
            "options ndots:5 edns0\n",
            Read("resolv.conf"));
    }

    [Fact]
    public void AnEmptyDnsConfigGivesAnEmptyResolvConf()
    {
        // dnsPolicy None without nameservers: kubelet sends an empty DNSConfig, not none.
        Files().Write(_podDir, Request(Dns()));
        Assert.Equal("", Read("resolv.conf"));
    }

    [Fact]
    public void WithoutADnsConfigTheHostsResolvConfIsCopied()
    {
        Files().Write(_podDir, Request(dns: null));
        Assert.Equal("# host\nnameserver 192.0.2.53\nsearch corp.example\n", Read("resolv.conf"));
    }

    [Fact]
    public void WithoutADnsConfigAMissingHostResolvConfGivesAnEmptyOne()
    {
        File.Delete(_host.ResolvConfPath);
        Files().Write(_podDir, Request(dns: null));
        Assert.Equal("", Read("resolv.conf"));
    }

    [Theory]
    [InlineData("10.0.0.10")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("010.001.000.001")] // kubelet's ParseIPSloppy takes leading zeros
    [InlineData("2001:db8::1")]
    [InlineData("::1")]
    [InlineData("::ffff:192.0.2.1")]
    public void ServersThatAreIpAddressesAreAccepted(string server)
    {
        Assert.Equal($"nameserver {server}\n", PodFiles.RenderResolvConf(Dns([server])));
    }

    public static TheoryData<PodDnsConfig, string> InvalidDnsConfigs()
    {
        var data = new TheoryData<PodDnsConfig, string>
        {
            { Dns(["1"]), "dns_config.servers[0]" },
            { Dns(["127.1"]), "dns_config.servers[0]" },
            { Dns(["0x7f.0.0.1"]), "dns_config.servers[0]" },
            { Dns(["256.0.0.1"]), "dns_config.servers[0]" },
            { Dns(["1.2.3.4.5"]), "dns_config.servers[0]" },
            { Dns(["10.0.0.1", "dns.example"]), "dns_config.servers[1]" },
            { Dns(["10.0.0.1", ""]), "dns_config.servers[1]" },
            { Dns(["fe80::1%eth0"]), "dns_config.servers[0]" },
            { Dns(["[::1]"]), "dns_config.servers[0]" },
            { Dns([" 10.0.0.1"]), "dns_config.servers[0]" },
            { Dns(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]), "dns_config.servers:" },
            { Dns(searches: [.. Enumerable.Range(0, 33).Select(i => $"s{i}.example")]), "dns_config.searches:" },
            { Dns(searches: ["a.example", "two words"]), "dns_config.searches[1]" },
            { Dns(searches: [""]), "dns_config.searches[0]" },
            { Dns(searches: ["tab\there"]), "dns_config.searches[0]" },
            { Dns(searches: ["line\nbreak"]), "dns_config.searches[0]" },
            { Dns(options: ["ndots:5", ""]), "dns_config.options[1]" },
            { Dns(options: ["ndots: 5"]), "dns_config.options[0]" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(InvalidDnsConfigs))]
    public void InvalidDnsConfigsAreRefusedNamingTheFieldAndNothingIsWritten(PodDnsConfig dns, string field)
    {
        var e = Assert.Throws<NacelleException>(() => Files().Write(_podDir, Request(dns)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(field, e.Message);
        Assert.False(Directory.Exists(_podDir) && Directory.EnumerateFileSystemEntries(_podDir).Any());
    }

    [Fact]
    public void ThirtyTwoSearchDomainsAreAccepted()
    {
        var searches = Enumerable.Range(0, 32).Select(i => $"s{i}.example").ToArray();
        Assert.Contains("search s0.example", PodFiles.RenderResolvConf(Dns(searches: searches)));
    }

    [Fact]
    public void TheSearchListMayBe2048CharactersJoinedBySpacesButNotMore()
    {
        // 8 domains of 255 characters + 7 spaces = 2047; one more character on the last domain makes 2048.
        var searches = Enumerable.Range(0, 8).Select(i => new string((char)('a' + i), 255)).ToArray();
        searches[^1] += "x";
        Assert.Equal(2048, string.Join(' ', searches).Length);
        PodFiles.ValidateDns(Dns(searches: searches));

        searches[^1] += "y";
        var e = Assert.Throws<NacelleException>(() => PodFiles.ValidateDns(Dns(searches: searches)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("dns_config.searches: the search list is 2049 characters long", e.Message);
    }

    // ---------------------------------------------------------------- hostname

    [Theory]
    [InlineData("a")]
    [InlineData("web-0")]
    [InlineData("0web")]
    [InlineData("web-0.web.default.svc.cluster.local")] // setHostnameAsFQDN
    public void ValidHostnamesAreWrittenWithANewline(string hostname)
    {
        Files().Write(_podDir, Request(hostname: hostname));
        Assert.Equal(hostname + "\n", Read("hostname"));
    }

    [Fact]
    public void A63CharacterLabelAndA64CharacterHostnameAreTheLimits()
    {
        PodFiles.ValidateHostname(new string('a', 63));
        var sixtyFour = new string('a', 31) + "." + new string('b', 32);
        Assert.Equal(64, sixtyFour.Length);
        PodFiles.ValidateHostname(sixtyFour);
    }

    [Theory]
    [InlineData("-web")]
    [InlineData("web-")]
    [InlineData("Web")]
    [InlineData("web_0")]
    [InlineData("web 0")]
    [InlineData("web..local")]
    [InlineData("web.")]
    [InlineData(".web")]
    [InlineData("wéb")]
    public void InvalidHostnamesAreRefusedNamingTheField(string hostname)
    {
        var e = Assert.Throws<NacelleException>(() => Files().Write(_podDir, Request(hostname: hostname)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("hostname: ", e.Message);
        Assert.False(File.Exists(Path.Combine(_podDir, "resolv.conf")));
    }

    [Fact]
    public void A64CharacterLabelIsRefused()
    {
        var e = Assert.Throws<NacelleException>(() => PodFiles.ValidateHostname(new string('a', 64)));
        Assert.Contains("not a valid RFC 1123 hostname", e.Message);
    }

    [Fact]
    public void A65CharacterHostnameIsRefused()
    {
        var e = Assert.Throws<NacelleException>(() => PodFiles.ValidateHostname(new string('a', 32) + "." + new string('b', 32)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("65 characters long, at most 64", e.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void WithoutAHostnameTheHostsIsUsed(string? hostname)
    {
        // kubelet sends no hostname for host-network pods.
        Files().Write(_podDir, Request(hostname: hostname, ips: [], hostNetwork: true));
        Assert.Equal("node-1\n", Read("hostname"));
    }

    // ---------------------------------------------------------------- hosts

    [Fact]
    public void APodNetworkHostsFileHasTheLoopbackNamesAndEachPodIp()
    {
        Files().Write(_podDir, Request(hostname: "web-0", ips: ["10.88.0.5", "fd00::5"]));
        Assert.Equal(
            "# Kubernetes-managed hosts file.\n" +
            "127.0.0.1\tlocalhost\n" +
            "::1\tlocalhost ip6-localhost ip6-loopback\n" +
            "fe00::0\tip6-localnet\n" +
            "fe00::0\tip6-mcastprefix\n" +
            "fe00::1\tip6-allnodes\n" +
            "fe00::2\tip6-allrouters\n" +
            "10.88.0.5\tweb-0\n" +
            "fd00::5\tweb-0\n",
            Read("hosts"));
    }

    [Fact]
    public void AHostNetworkPodGetsACopyOfTheHostsHostsFile()
    {
        Files().Write(_podDir, Request(hostname: null, ips: [], hostNetwork: true));
        Assert.Equal("127.0.0.1 localhost\n192.0.2.7 node-1.corp.example node-1\n", Read("hosts"));
    }

    [Fact]
    public void AHostNetworkPodWithoutAHostHostsFileGetsTheLoopbackNames()
    {
        File.Delete(_host.HostsPath);
        Files().Write(_podDir, Request(hostname: null, ips: [], hostNetwork: true));
        Assert.Equal(PodFiles.RenderHosts("node-1", []), Read("hosts"));
        Assert.DoesNotContain("node-1", Read("hosts"));
    }

    [Theory]
    [InlineData("10.88.0")]
    [InlineData("")]
    [InlineData("pod.example")]
    public void InvalidPodIpsAreRefusedNamingTheField(string ip)
    {
        var e = Assert.Throws<NacelleException>(() => Files().Write(_podDir, Request(ips: ["10.88.0.5", ip])));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("pod ips[1]: ", e.Message);
    }

    // ---------------------------------------------------------------- files

    [Fact]
    public void FilesAre0644WhateverTheirPreviousModeAndNoTemporaryFileRemains()
    {
        Directory.CreateDirectory(_podDir);
        var stale = Path.Combine(_podDir, "hosts");
        File.WriteAllText(stale, "old");
        File.SetUnixFileMode(stale, UnixFileMode.UserRead);

        var paths = Files().Write(_podDir, Request());

        Assert.Equal(Path.Combine(_podDir, "resolv.conf"), paths.ResolvConf);
        Assert.Equal(Path.Combine(_podDir, "hostname"), paths.Hostname);
        Assert.Equal(Path.Combine(_podDir, "hosts"), paths.Hosts);
        foreach (var path in new[] { paths.ResolvConf, paths.Hostname, paths.Hosts })
        {
            Assert.Equal(Mode0644, File.GetUnixFileMode(path));
        }

        Assert.Contains("web-0", File.ReadAllText(stale));
        Assert.Equal(["hostname", "hosts", "resolv.conf"], Directory.EnumerateFileSystemEntries(_podDir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void WritingAgainReplacesTheFiles()
    {
        Files().Write(_podDir, Request(Dns(["10.0.0.1"]), hostname: "one"));
        Files().Write(_podDir, Request(Dns(["10.0.0.2"]), hostname: "two"));
        Assert.Equal("nameserver 10.0.0.2\n", Read("resolv.conf"));
        Assert.Equal("two\n", Read("hostname"));
        Assert.Equal(3, Directory.EnumerateFileSystemEntries(_podDir).Count());
    }

    [Fact]
    public void TheShmDirectoryIsCreatedUnderThePodDirectory()
    {
        var shm = PodFiles.CreateShmDirectory(_podDir);
        Assert.Equal(Path.Combine(_podDir, "shm"), shm);
        Assert.True(Directory.Exists(shm));
        Assert.Equal(shm, PodFiles.CreateShmDirectory(_podDir)); // idempotent
    }
}
