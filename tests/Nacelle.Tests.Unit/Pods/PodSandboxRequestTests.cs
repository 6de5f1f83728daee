using Nacelle.Common;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Pods;

namespace Nacelle.Tests.Unit.Pods;

/// <summary>What RunPodSandbox refuses before it acquires anything (each case once leaked state when refused half way).</summary>
public sealed class PodSandboxRequestTests
{
    private static PodSandboxRequest Request(string logDirectory = "", params CniPortMapping[] ports) => new()
    {
        Name = "web", Namespace = "default", Uid = "uid-1", LogDirectory = logDirectory, PortMappings = ports,
    };

    [Theory]
    [InlineData("")]
    [InlineData("/var/log/pods/default_web_uid-1")]
    [InlineData("/var/log/pods/default_web_uid-1/")]
    [InlineData("/tmp/..hidden/x.y")]
    public void Clean_absolute_log_directories_and_none_are_accepted(string directory) => Request(directory).Validate();

    [Theory]
    [InlineData("../../tmp/evil-dir")]
    [InlineData("var/log/pods")]
    [InlineData("/var/log/pods/../../../etc")]
    [InlineData("/var/log/./pods")]
    [InlineData("/var//log")]
    [InlineData("/var/log/pods/..")]
    public void Relative_or_dotted_log_directories_are_refused_naming_the_field(string directory)
    {
        var e = Assert.Throws<NacelleException>(() => Request(directory).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("log_directory", e.Message, StringComparison.Ordinal);
        Assert.Contains(directory, e.Message, StringComparison.Ordinal);
    }

    /// <summary>Found by the CRI fuzzer: a log directory the kernel cannot hold was accepted, and each CreateContainer in
    /// the pod then failed with Internal (PathTooLongException) making it.</summary>
    [Theory]
    [InlineData(256, 1)]
    [InlineData(200, 21)]
    public void Log_directories_over_the_kernels_path_limits_are_refused(int componentLength, int components)
    {
        var directory = string.Concat(Enumerable.Repeat("/" + new string('d', componentLength), components));
        var e = Assert.Throws<NacelleException>(() => Request(directory).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("log_directory: path ", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(70000, 80, "tcp", null, "host_port 70000")]
    [InlineData(8080, 70000, "tcp", null, "container_port 70000")]
    [InlineData(8080, 80, "icmp", null, "unknown protocol 'icmp'")]
    [InlineData(8080, 80, "tcp", "not-an-ip", "host_ip 'not-an-ip'")]
    public void Port_mappings_no_plugin_could_install_are_refused_up_front(int host, int container, string protocol, string? hostIp, string expected)
    {
        var e = Assert.Throws<NacelleException>(() => Request("", new CniPortMapping(host, container, protocol, hostIp)).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    /// <summary>Regression (found by the CRI fuzzer): cgroup_parent "relative/x" was accepted and made as /relative/x at the
    /// root of every hierarchy.</summary>
    [Theory]
    [InlineData("relative/x")]
    [InlineData("kubepods-besteffort")]
    public void A_relative_cgroup_parent_is_refused_naming_the_field(string parent)
    {
        var e = Assert.Throws<NacelleException>(() => (Request() with { CgroupParent = parent }).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"linux.cgroup_parent '{parent}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_absolute_cgroup_parent_is_accepted() => (Request() with { CgroupParent = "/kubepods/besteffort/pod1" }).Validate();

    /// <summary>Regression: the relative-parent check refused every systemd slice, so no pod ran under the systemd cgroup
    /// driver.</summary>
    [Fact]
    public void A_systemd_slice_name_is_accepted_under_the_systemd_driver() =>
        (Request() with { CgroupParent = "kubepods-besteffort-pod4042ba7ccd5e.slice" }).Validate(systemdDriver: true);

    [Fact]
    public void An_unpublished_port_needs_no_container_port() => Request("", new CniPortMapping(0, 0, "TCP")).Validate();

    [Theory]
    [InlineData("a\0b", "uid-1")]
    [InlineData("web;IgnoreUnknown=0", "uid-1")]
    [InlineData("web", "uid=1")]
    [InlineData("web", "uid\n1")]
    public void Metadata_that_would_break_CNI_ARGS_is_refused(string name, string uid)
    {
        var request = Request() with { Name = name, Uid = uid };
        var e = Assert.Throws<NacelleException>(() => request.Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("CNI_ARGS", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/kubepods/burstable/pod1", false)]
    [InlineData("", false)]
    [InlineData("", true)]
    public void A_cgroup_parent_in_the_drivers_form_is_accepted(string parent, bool systemd) =>
        (Request() with { CgroupParent = parent }).Validate(systemd);

    [Theory]
    [InlineData("/kubepods/burstable/pod1", true, "is a cgroupfs path, but nacelle's cgroup.driver is systemd")]
    [InlineData("kubepods-burstable-pod1.slice", false, "is a systemd slice, but nacelle's cgroup.driver is cgroupfs")]
    public void A_cgroup_parent_of_the_other_drivers_form_or_relative_is_refused(string parent, bool systemd, string expected)
    {
        var e = Assert.Throws<NacelleException>(() => (Request() with { CgroupParent = parent }).Validate(systemd));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("linux.cgroup_parent", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
