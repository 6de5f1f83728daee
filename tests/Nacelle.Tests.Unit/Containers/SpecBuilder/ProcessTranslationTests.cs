using Nacelle.Common;
using Nacelle.CriServer.Services.Containers;
using Nacelle.Sandbox.Containers.Spec;
using Runtime.V1;
using static Nacelle.Tests.Unit.Containers.SpecBuilder.Fx;

namespace Nacelle.Tests.Unit.Containers.SpecBuilder;

public sealed class ProcessTranslationTests
{
    // (config command, config args, image Entrypoint, image Cmd) -> argv; "|" separates words, "-" is empty.
    [Theory]
    [InlineData("-", "-", "/entry|e1", "c1|c2", "/entry|e1|c1|c2")] // image entrypoint + image cmd
    [InlineData("/cmd|x", "-", "/entry|e1", "c1|c2", "/cmd|x")] // command replaces entrypoint AND drops the image cmd
    [InlineData("/cmd", "a1|a2", "/entry", "c1", "/cmd|a1|a2")] // command + args
    [InlineData("-", "a1|a2", "/entry|e1", "c1", "/entry|e1|a1|a2")] // args replace only the cmd
    [InlineData("-", "-", "-", "/bin/cmd|c1", "/bin/cmd|c1")] // no entrypoint: the cmd runs
    [InlineData("-", "/bin/a", "-", "/bin/cmd", "/bin/a")] // args alone
    [InlineData("-", "-", "", "/bin/cmd", "/bin/cmd")] // Entrypoint [""] resets the entrypoint
    public void CommandAndArgsFollowDockersOverrideRules(string command, string args, string entrypoint, string cmd, string expected)
    {
        static List<string> Words(string s) => s == "-" ? [] : [.. s.Split('|')];
        var config = Config();
        config.Command.AddRange(Words(command));
        config.Args.AddRange(Words(args));

        var spec = Spec(config, Image(entrypoint: [.. Words(entrypoint)], cmd: [.. Words(cmd)]));

        Assert.Equal(Words(expected), spec.Process!.Args);
    }

    [Fact]
    public void NoCommandAnywhereIsRefused()
    {
        Refused(() => Spec(Config(), Image(entrypoint: [], cmd: [])), "no command specified");
        var empty = Config();
        empty.Command.Add("");
        Refused(() => Spec(empty), "command[0]", "no command specified");
    }

    /// <summary>Found by the CRI fuzzer once the spawn moved to StartContainer: a NUL in argv or working_dir was refused
    /// only by the spawn helper's message, at start; CreateContainer refuses it, naming the field.</summary>
    [Theory]
    [InlineData("/bin/sh|a\0b", "-", "-", "-", "command[1]")]
    [InlineData("\0", "-", "-", "-", "command[0]")]
    [InlineData("-", "x\0", "/entry", "-", "args[0]")]
    [InlineData("-", "-", "/entry|e\0", "-", "image config Entrypoint[1]")]
    [InlineData("-", "-", "/entry", "c\0", "image config Cmd[0]")]
    [InlineData("/bin/sh", "-", "-", "-", "working_dir")]
    public void ANulInArgvOrWorkingDirIsRefused(string command, string args, string entrypoint, string cmd, string field)
    {
        static List<string> Words(string s) => s == "-" ? [] : [.. s.Split('|')];
        var config = Config();
        config.Command.AddRange(Words(command));
        config.Args.AddRange(Words(args));
        if (field == "working_dir")
        {
            config.WorkingDir = "/tmp/a\0b";
        }

        Refused(() => Spec(config, Image(entrypoint: [.. Words(entrypoint)], cmd: [.. Words(cmd)])), field, "NUL");
    }

    [Fact]
    public void ImageEnvComesFirstAndConfigEnvsOverrideByKey()
    {
        var config = Config();
        config.Envs.Add(Env("B", "from-config"));
        config.Envs.Add(Env("NEW", "n=1"));
        config.Envs.Add(Env("EMPTY", ""));

        var spec = Spec(config, Image(env: ["PATH=/img/bin", "A=1", "B=from-image", "C=3"]));

        Assert.Equal(
            ["PATH=/img/bin", "HOSTNAME=web-0", "A=1", "B=from-config", "C=3", "NEW=n=1", "EMPTY=", "HOME=/root"],
            spec.Process!.Env);
    }

    [Fact]
    public void PathDefaultsWhenNobodySetsIt()
    {
        var spec = Spec(Config(), Image(env: ["A=1"]));
        Assert.Equal(LinuxDefaults.Path, Env(spec, "PATH"));
        Assert.Equal("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", Env(spec, "PATH"));
    }

    [Fact]
    public void AnImageEnvWithoutValueUnsetsTheVariable()
    {
        var spec = Spec(Config(), Image(env: ["PATH"]));
        Assert.DoesNotContain(spec.Process!.Env, e => e.StartsWith("PATH=", StringComparison.Ordinal));
    }

    [Fact]
    public void HomeComesFromPasswdUnlessSet()
    {
        Assert.Equal("/home/app", Env(Spec(Config(s => s.RunAsUser = new Int64Value { Value = 1000 })), "HOME"));
        Assert.Equal("/", Env(Spec(Config(s => s.RunAsUser = new Int64Value { Value = 4242 })), "HOME"));
        var config = Config();
        config.Envs.Add(Env("HOME", "/custom"));
        Assert.Equal("/custom", Env(Spec(config), "HOME"));
    }

    [Theory]
    [InlineData("", "k", "envs[0].key")]
    [InlineData("A=B", "k", "envs[0].key")]
    public void BadEnvKeysAreRefused(string key, string value, string field)
    {
        var config = Config();
        config.Envs.Add(Env(key, value));
        Refused(() => Spec(config), field);
    }

    [Theory]
    [InlineData("/cfg", "/img", "/cfg")]
    [InlineData("", "/img", "/img")]
    [InlineData("", null, "/")]
    public void WorkingDirConfigOverridesImageDefaultRoot(string configDir, string? imageDir, string expected)
    {
        var config = Config();
        config.WorkingDir = configDir;
        Assert.Equal(expected, Spec(config, Image(workingDir: imageDir)).Process!.Cwd);
    }

    [Fact]
    public void RelativeWorkingDirIsRefused()
    {
        var config = Config();
        config.WorkingDir = "work";
        Refused(() => Spec(config), "working_dir");
        Refused(() => Spec(Config(), Image(workingDir: "rel")), "image config WorkingDir");
    }

    [Theory]
    [InlineData(Signal.RuntimeDefault, null, 15, "SIGTERM")]
    [InlineData(Signal.RuntimeDefault, "SIGQUIT", 3, "SIGQUIT")]
    [InlineData(Signal.RuntimeDefault, "usr2", 12, "SIGUSR2")]
    [InlineData(Signal.RuntimeDefault, "9", 9, "SIGKILL")]
    [InlineData(Signal.RuntimeDefault, "SIGRTMIN+3", 37, "SIGRTMIN+3")]
    [InlineData(Signal.RuntimeDefault, "RTMAX-1", 63, "SIGRTMAX-1")]
    [InlineData(Signal.Sigkill, "SIGQUIT", 9, "SIGKILL")] // the CRI field wins over the image
    [InlineData(Signal.Sigusr1, null, 10, "SIGUSR1")]
    [InlineData(Signal.Sigwinch, null, 28, "SIGWINCH")]
    [InlineData(Signal.Sigrtmin, null, 34, "SIGRTMIN")]
    [InlineData(Signal.Sigrtminplus3, null, 37, "SIGRTMIN+3")]
    [InlineData(Signal.Sigrtmaxminus14, null, 50, "SIGRTMAX-14")]
    [InlineData(Signal.Sigrtmax, null, 64, "SIGRTMAX")]
    [InlineData(Signal.Sigiot, null, 6, "SIGABRT")]
    public void StopSignalFromConfigThenImageThenSigterm(Signal configured, string? imageSignal, int number, string name)
    {
        var config = Config();
        config.StopSignal = configured;
        var result = Translate(config, Image(stopSignal: imageSignal));
        Assert.Equal(number, result.StopSignal);
        Assert.Equal(name, result.StopSignalName);
    }

    [Fact]
    public void EveryCriSignalMapsToALinuxSignal()
    {
        foreach (var signal in Enum.GetValues<Signal>().Where(s => s != Signal.RuntimeDefault))
        {
            var mapped = CriSignals.FromCri(signal);
            Assert.NotNull(mapped);
            Assert.InRange(mapped.Value.Number, 1, 64);
            Assert.Equal(mapped.Value.Number, StopSignals.Parse(mapped.Value.Name)!.Value.Number);
        }
    }

    [Theory]
    [InlineData("SIGNOPE")]
    [InlineData("0")]
    [InlineData("65")]
    public void AnUnknownImageStopSignalIsRefused(string signal)
    {
        Refused(() => Spec(Config(), Image(stopSignal: signal)), "image config StopSignal");
    }

    [Fact]
    public void LogPathIsJoinedUnderTheLogDirectory()
    {
        Assert.Equal("/var/log/pods/default_web-0_uid1/app/0.log", Translate().LogFile);
        var none = Config();
        none.LogPath = "";
        Assert.Null(Translate(none).LogFile);
    }

    /// <summary>Found by the CRI fuzzer: a log file path the kernel cannot hold failed with Internal
    /// (PathTooLongException) when its directory was made; it is refused naming log_path.</summary>
    [Theory]
    [InlineData(256, 1)]
    [InlineData(250, 17)]
    public void LogPathsOverTheKernelsPathLimitsAreRefused(int componentLength, int components)
    {
        var config = Config();
        config.LogPath = string.Join('/', Enumerable.Repeat(new string('p', componentLength), components)) + "/0.log";
        Refused(() => Translate(config), "log_path");
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../other/0.log")]
    [InlineData("app/../../x.log")]
    [InlineData("app/0\0.log")] // found by the CRI fuzzer: Internal (ArgumentException making the log directory)
    public void LogPathsThatEscapeTheLogDirectoryAreRefused(string logPath)
    {
        var config = Config();
        config.LogPath = logPath;
        Refused(() => Translate(config), "log_path");
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, true, true)]
    [InlineData(true, false, true)]
    [InlineData(false, true, false)]
    public void TtyAndStdinFlagsAreReported(bool tty, bool stdin, bool stdinOnce)
    {
        var config = Config();
        config.Tty = tty;
        config.Stdin = stdin;
        config.StdinOnce = stdinOnce;
        var result = Translate(config);
        Assert.Equal(tty, result.Spec.Process!.Terminal);
        Assert.Equal((tty, stdin, stdinOnce), (result.Tty, result.Stdin, result.StdinOnce));
    }

    [Fact]
    public void HostnameIsThePodsAndHostnameEnvFollows()
    {
        var spec = Spec();
        Assert.Equal("web-0", spec.Hostname);
        Assert.Equal("web-0", Env(spec, "HOSTNAME"));
    }

    [Fact]
    public void AnnotationsAreCopiedAndTheCriOnesCannotBeSpoofed()
    {
        var config = Config();
        config.Annotations["team"] = "blue";
        config.Annotations[ContainerSpecBuilder.SandboxIdAnnotation] = "spoofed";

        var spec = Spec(config);

        Assert.Equal("blue", spec.Annotations["team"]);
        Assert.Equal("pod1", spec.Annotations[ContainerSpecBuilder.SandboxIdAnnotation]);
        Assert.Equal("container", spec.Annotations[ContainerSpecBuilder.ContainerTypeAnnotation]);
        Assert.Equal("app", spec.Annotations[ContainerSpecBuilder.ContainerNameAnnotation]);
        Assert.Equal("web-0", spec.Annotations[ContainerSpecBuilder.SandboxNameAnnotation]);
        Assert.Equal("default", spec.Annotations[ContainerSpecBuilder.SandboxNamespaceAnnotation]);
        Assert.Equal("uid1", spec.Annotations[ContainerSpecBuilder.SandboxUidAnnotation]);
        Assert.Equal("docker.io/library/busybox:latest", spec.Annotations[ContainerSpecBuilder.ImageNameAnnotation]);
    }

    [Fact]
    public void RootAndCgroupsPathComeFromThePodLayer()
    {
        var config = Config(s => s.ReadonlyRootfs = true);
        var spec = Spec(config);
        Assert.Equal("/var/lib/nacelle/snapshots/ctr1/rootfs", spec.Root!.Path);
        Assert.True(spec.Root.Readonly);
        Assert.False(Spec().Root!.Readonly);
        Assert.Equal("/kubepods/burstable/podabc/ctr1", spec.Linux!.CgroupsPath);
    }

    [Fact]
    public void MissingMetadataAndCdiDevicesAreRefused()
    {
        var config = Config();
        config.Metadata = null;
        Refused(() => Spec(config), "metadata.name");

        var cdi = Config();
        cdi.CDIDevices.Add(new CDIDevice { Name = "vendor.com/gpu=0" });
        Refused(ErrorKind.Unimplemented, () => Spec(cdi), "CDI_devices[0]");
    }
}
