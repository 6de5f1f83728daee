using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;

namespace Nacelle.Tests.Unit.Monitor;

/// <summary>What the daemon and nacelle-monitor share: the command line the launcher writes and the monitor parses, and
/// the wire names of protocol version 1.</summary>
public sealed class MonitorProtocolTests
{
    [Fact]
    public void The_launchers_arguments_parse_back_to_the_same_options()
    {
        var options = new MonitorOptions
        {
            PodId = "p1", Directory = "/run/nacelle/pods/p1/monitor", CgroupParent = "/kubepods/podx", SocketPath = "/run/nacelle/m/p1.sock", SpawnHelperFd = 3,
        };
        Assert.Equal(options, MonitorOptions.Parse(options.ToArguments()));
        var plain = new MonitorOptions { PodId = "p2", Directory = "/tmp/m" };
        var back = MonitorOptions.Parse(plain.ToArguments());
        Assert.Equal("/tmp/m/monitor.sock", back.SocketPath);
        Assert.Null(back.CgroupParent);
        Assert.Null(back.SpawnHelperFd);
    }

    [Theory]
    [InlineData(new[] { "--pod", "p" }, "--pod and --dir are required")]
    [InlineData(new[] { "--pod", "p", "--dir" }, "option --dir needs a value")]
    [InlineData(new[] { "--pod", "p", "--dir", "/d", "--verbose", "1" }, "unknown option --verbose")]
    [InlineData(new[] { "--pod", "p", "--dir", "/d", "--spawn-helper-fd", "2" }, "--spawn-helper-fd needs an fd number above 2, not '2'")]
    [InlineData(new[] { "--pod", "p", "--dir", "/d", "--spawn-helper-fd", "-4" }, "--spawn-helper-fd needs an fd number above 2, not '-4'")]
    [InlineData(new[] { "--pod", "p", "--dir", "/d", "--spawn-helper-fd", "x" }, "--spawn-helper-fd needs an fd number above 2, not 'x'")]
    public void A_bad_command_line_is_refused_naming_what_is_wrong(string[] args, string message)
    {
        var e = Assert.Throws<NacelleException>(() => MonitorOptions.Parse(args));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void The_log_file_keeps_its_version_1_wire_name()
    {
        var line = MonitorProtocol.Encode(new MonitorRequest { Op = MonitorProtocol.Create, ContainerId = "c", LogFile = "/var/log/pods/x/0.log" },
            MonitorJson.Default.MonitorRequest);
        Assert.Contains("\"logPath\":\"/var/log/pods/x/0.log\"", System.Text.Encoding.UTF8.GetString(line), StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize("""{"id":1,"ok":true,"container":{"id":"c","status":"Running","logPath":"/l"}}""", MonitorJson.Default.MonitorResponse)!;
        Assert.Equal("/l", back.Container!.LogFile);
    }
}
