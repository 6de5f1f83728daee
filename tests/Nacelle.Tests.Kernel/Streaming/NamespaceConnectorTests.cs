using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Nacelle.Common;
using Nacelle.ContainerCore.Spawn;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Kernel.Streaming;

/// <summary>
/// The spawn helper's connect mode: a TCP connection made inside a network namespace (port-forward into a pod), with a
/// server on the same port on the host that must not be the one reached, and no thread of this process left in the
/// namespace.
/// </summary>
public sealed class NamespaceConnectorTests : IDisposable
{
    private const string Python = "/usr/bin/python3";

    // Accepts one connection on the address family and port given, sends its greeting, closes; prints "ready" first.
    private const string Server = """
        import socket, sys
        family = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", int(sys.argv[2])))
        s.listen(4)
        print("ready", flush=True)
        c, _ = s.accept()
        c.sendall(sys.argv[3].encode())
        c.close()
        """;

    private readonly string _netns = "nacelle-t-conn-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    private readonly List<Process> _servers = [];
    private bool _created;

    private static void RequireRoot() =>
        Assert.SkipUnless(Environment.UserName == "root" && File.Exists(Python), "needs root (network namespaces) and /usr/bin/python3");

    private string CreateNamespace()
    {
        Check(TestProcesses.Run("ip", "netns", "add", _netns));
        _created = true;
        Check(TestProcesses.Run("ip", "-n", _netns, "link", "set", "lo", "up"));
        return "/run/netns/" + _netns;
    }

    private static void Check((int Exit, string Stdout, string Stderr) run) =>
        Assert.True(run.Exit == 0, $"exit {run.Exit}: {run.Stderr}{run.Stdout}");

    private void StartServerInside(int family, int port, string greeting)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { "netns", "exec", _netns, Python, "-c", Server, family.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     port.ToString(System.Globalization.CultureInfo.InvariantCulture), greeting })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info)!;
        _servers.Add(process);
        Assert.Equal("ready", process.StandardOutput.ReadLine());
    }

    private static async Task<string> ReadAllAsync(Socket socket)
    {
        using var stream = new NetworkStream(socket, ownsSocket: true);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync();
    }

    /// <summary>The network namespace of every thread of this process.</summary>
    private static HashSet<string> ThreadNamespaces() =>
        Directory.GetDirectories("/proc/self/task").Select(task =>
        {
            try
            {
                return new FileInfo(Path.Combine(task, "ns", "net")).LinkTarget ?? "?";
            }
            catch (IOException)
            {
                return null; // the thread ended meanwhile
            }
        }).OfType<string>().ToHashSet();

    [Fact]
    public async Task Connects_to_loopback_inside_the_namespace_and_never_moves_a_thread_of_ours()
    {
        RequireRoot();
        var netns = CreateNamespace();
        // The same port on the host's loopback says "host": reaching it would be the wrong namespace.
        using var host = new TcpListener(IPAddress.Loopback, 0);
        host.Start();
        var port = ((IPEndPoint)host.LocalEndpoint).Port;
        StartServerInside(4, port, "inside");
        var before = ThreadNamespaces();

        var socket = await new NamespaceConnector().ConnectLoopbackAsync(netns, port);

        Assert.Equal(AddressFamily.InterNetwork, socket.AddressFamily);
        Assert.Equal("inside", await ReadAllAsync(socket));
        Assert.False(host.Pending(), "the host's listener was reached");
        var after = ThreadNamespaces();
        Assert.Equal(before, after);
        Assert.Single(after);
    }

    [Fact]
    public async Task A_server_on_ipv6_loopback_only_is_reached_after_ipv4_is_refused()
    {
        RequireRoot();
        var netns = CreateNamespace();
        StartServerInside(6, 8080, "six");

        var socket = await new NamespaceConnector().ConnectLoopbackAsync(netns, 8080);

        Assert.Equal(AddressFamily.InterNetworkV6, socket.AddressFamily);
        Assert.Equal("six", await ReadAllAsync(socket));
    }

    [Fact]
    public async Task Nothing_listening_is_unavailable_and_a_missing_namespace_not_found()
    {
        RequireRoot();
        var netns = CreateNamespace();

        var refused = await Assert.ThrowsAsync<SpawnException>(() => new NamespaceConnector().ConnectLoopbackAsync(netns, 8081));
        Assert.Equal(ErrorKind.Unavailable, refused.Kind);
        Assert.Contains("127.0.0.1:8081", refused.Message);
        Assert.Contains("Connection refused", refused.Message);

        var missing = await Assert.ThrowsAsync<SpawnException>(() => new NamespaceConnector().ConnectLoopbackAsync(netns + "-gone", 8081));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        Assert.Contains("-gone", missing.Message);
    }

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }

            server.WaitForExit();
            server.Dispose();
        }

        if (_created)
        {
            TestProcesses.Run("ip", "netns", "del", _netns);
        }
    }
}
