using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Processes;
using Nacelle.ContainerCore.Spec;
using Nacelle.Sandbox.Monitor;
using Nacelle.Tests.Kernel.Containers;

namespace Nacelle.Tests.Kernel.Monitor;

/// <summary>
/// A real nacelle-monitor (the JIT build through dotnet) over a busybox rootfs, with a connected client. Disposal
/// leaves nothing behind even when a test failed half-way: a shutdown request (which deletes every container), and
/// if that does not work, SIGKILL to the monitor and to every process left in the test's cgroups, then the cgroups
/// and the directories go.
/// </summary>
internal sealed class MonitorPodFixture : IAsyncDisposable
{
    private MonitorPodFixture(ContainerTestScope scope, MonitorOptions options, WatchedProcess monitor, MonitorClient client)
    {
        Scope = scope;
        Options = options;
        Monitor = monitor;
        Client = client;
    }

    public ContainerTestScope Scope { get; }
    public MonitorOptions Options { get; }
    public WatchedProcess Monitor { get; }
    public MonitorClient Client { get; }

    public static async Task<MonitorPodFixture> StartAsync()
    {
        Assert.True(ContainerTestScope.Available);
        var scope = new ContainerTestScope();
        WatchedProcess? monitor = null;
        try
        {
            var options = new MonitorOptions
            {
                PodId = "pod-" + Guid.NewGuid().ToString("N")[..8], Directory = Path.Combine(scope.Root, "monitor"), CgroupParent = scope.CgroupParent,
            };
            // NACELLE_MONITOR runs the suite against another build (the Native AOT one); by default the JIT build.
            var program = Environment.GetEnvironmentVariable(MonitorLauncher.PathVariable) is { Length: > 0 } other
                ? other
                : Path.Combine(AppContext.BaseDirectory, "nacelle-monitor.dll");
            monitor = MonitorLauncher.Launch(options, program);
            var client = new MonitorClient(options.SocketPath);
            await client.ConnectAsync(TimeSpan.FromSeconds(20));
            return new MonitorPodFixture(scope, options, monitor, client);
        }
        catch
        {
            if (monitor is not null)
            {
                monitor.Signal(9);
                await monitor.WaitForExitAsync();
                monitor.Dispose();
            }

            await scope.DisposeAsync();
            throw;
        }
    }

    /// <summary>Creates and starts a container running <paramref name="spec"/> (through <paramref name="runtime"/> when
    /// given; with a stdin to attach to with <paramref name="stdin"/>); returns what the monitor says of it.</summary>
    public async Task<MonitorContainer> RunAsync(string id, RuntimeSpec spec, string? logPath = null, ExternalRuntime? runtime = null, bool stdin = false)
    {
        await Client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.Create, ContainerId = id, SpecJson = RuntimeSpecFile.Serialize(spec), Bundle = Scope.Root, LogFile = logPath,
            Runtime = runtime, Stdin = stdin,
        });
        return (await Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Start, ContainerId = id })).Container!;
    }

    public async Task<MonitorContainer> WaitStoppedAsync(string id, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        MonitorContainer state;
        do
        {
            await Task.Delay(50);
            state = (await Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.State, ContainerId = id })).Container!;
        }
        while (state.Status != "Stopped" && DateTime.UtcNow < deadline);
        return state;
    }

    public Task<MonitorResponse> ExecAsync(string id, SpecProcess process, long? timeoutMs = null, int? outputLimit = null) =>
        Client.SendAsync(new MonitorRequest
        {
            Op = MonitorProtocol.ExecSync, ContainerId = id,
            ProcessJson = JsonSerializer.Serialize(process, RuntimeSpecJson.Default.SpecProcess), TimeoutMs = timeoutMs, OutputLimit = outputLimit,
        });

    public static SpecProcess Process(params string[] args) => new() { Args = [.. args], Cwd = "/", Env = ["PATH=/bin"] };

    /// <summary>A raw connection that asked to watch: yields the event lines.</summary>
    public async Task<(Socket Socket, NetworkStream Stream, MemoryStream Pending)> WatchAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Options.SocketPath));
        var stream = new NetworkStream(socket, ownsSocket: true);
        await stream.WriteAsync(MonitorProtocol.Encode(new MonitorRequest { Id = 1, Op = MonitorProtocol.Watch }, MonitorJson.Default.MonitorRequest));
        var pending = new MemoryStream();
        var answer = JsonSerializer.Deserialize(
            (await MonitorProtocol.ReadLineAsync(stream, pending, CancellationToken.None))!, MonitorJson.Default.MonitorResponse)!;
        Assert.True(answer.Ok);
        Assert.Equal(1, answer.Id);
        return (socket, stream, pending);
    }

    /// <summary>The names of a process's threads (/proc/PID/task/*/comm).</summary>
    public static List<string> ThreadNames(int pid) =>
        [.. Directory.GetDirectories($"/proc/{pid}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim())];

    /// <summary>The parent pid of <paramref name="pid"/> (/proc/PID/stat).</summary>
    public static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
    }

    /// <summary>(state, parent) of every process whose parent is <paramref name="parent"/>.</summary>
    public static List<(int Pid, char State, string Comm)> ChildrenOf(int parent)
    {
        var result = new List<(int, char, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var open = stat.IndexOf('(');
                var close = stat.LastIndexOf(')');
                var fields = stat[(close + 2)..].Split(' ');
                if (int.Parse(fields[1], CultureInfo.InvariantCulture) == parent)
                {
                    result.Add((pid, fields[0][0], stat[(open + 1)..close]));
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Monitor.HasExited)
            {
                try
                {
                    await Client.SendAsync(new MonitorRequest { Op = MonitorProtocol.Shutdown }).WaitAsync(TimeSpan.FromSeconds(30));
                    await Monitor.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
                }
                catch (Exception)
                {
                    // the hard way below
                }
            }

            if (!Monitor.HasExited)
            {
                Monitor.Signal(9);
            }

            await Monitor.WaitForExitAsync();
            await Client.DisposeAsync();
            await KillCgroupProcessesAsync(Scope.CgroupParent);
        }
        finally
        {
            Monitor.Dispose();
            await Scope.DisposeAsync();
        }
    }

    /// <summary>SIGKILLs whatever still runs in the test's cgroups and removes them, deepest first (all hierarchies).</summary>
    private static async Task KillCgroupProcessesAsync(string parent)
    {
        var dirs = new List<string>();
        foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
        {
            var dir = hierarchy + parent;
            if (Directory.Exists(dir))
            {
                dirs.Add(dir);
                dirs.AddRange(Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories));
            }
        }

        foreach (var dir in dirs)
        {
            var procs = Path.Combine(dir, "cgroup.procs");
            if (!File.Exists(procs))
            {
                continue;
            }

            foreach (var line in File.ReadAllLines(procs))
            {
                if (int.TryParse(line, CultureInfo.InvariantCulture, out var pid))
                {
                    ContainerCore.Interop.Signals.Send(pid, 9);
                }
            }
        }

        foreach (var dir in dirs.OrderByDescending(d => d.Length))
        {
            for (var attempt = 0; attempt < 50 && Directory.Exists(dir); attempt++)
            {
                try
                {
                    Directory.Delete(dir);
                }
                catch (IOException)
                {
                    await Task.Delay(100);
                }
            }
        }
    }
}
