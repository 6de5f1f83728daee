using System.Diagnostics;

namespace Nacelle.Tests.Support;

/// <summary>
/// A real systemd (this machine's /lib/systemd/systemd) running as PID 1 of its own pid, mount, cgroup, UTS and IPC
/// namespaces, with its own D-Bus system bus (dbus-daemon as a unit), for tests of the systemd cgroup driver on a host
/// whose init is not systemd. It is confined to a cgroup subtree the test makes, /nacelle-test-systemd-&lt;random&gt; in
/// every hierarchy: the cgroup namespace makes that subtree its root, so every slice and scope it creates lands there.
/// Its mounts (a tmpfs /run, its cgroup mounts) live in its mount namespace; /proc/sys is read-only in there and
/// /dev/console is a file, so it changes no host setting and writes nothing to the host's console. It loads only the
/// units written here (SYSTEMD_UNIT_PATH; no generators). Disposing kills it, which ends every process of its pid
/// namespace, and removes the subtree. <see cref="SkipReason"/> says why one cannot run (then tests skip).
/// </summary>
public sealed class TestSystemd : IDisposable
{
    public const string Binary = "/lib/systemd/systemd";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _launcher;
    private readonly string _directory;

    private TestSystemd(string subtree, string directory, Process launcher, int pid)
    {
        Subtree = subtree;
        _directory = directory;
        _launcher = launcher;
        Pid = pid;
    }

    /// <summary>Why no test systemd can run on this machine (not root, a program missing), or null.</summary>
    public static string? SkipReason()
    {
        if (Environment.UserName != "root")
        {
            return "a test systemd needs root (namespaces, cgroups)";
        }

        foreach (var program in new[] { Binary, "/usr/bin/dbus-daemon", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/systemctl" })
        {
            if (!File.Exists(program))
            {
                return $"{program} is not installed (systemd, dbus and util-linux: scripts/install-deps.sh --test)";
            }
        }

        return Directory.Exists("/sys/fs/cgroup/systemd") || File.Exists("/sys/fs/cgroup/cgroup.controllers")
            ? null
            : "this machine has neither a name=systemd hierarchy nor a unified cgroup2 at /sys/fs/cgroup for systemd to use";
    }

    /// <summary>The cgroup subtree (the same path in every hierarchy) that is systemd's root.</summary>
    public string Subtree { get; }

    /// <summary>systemd's pid in the host's pid namespace.</summary>
    public int Pid { get; }

    /// <summary>The cgroup directories of every hierarchy mounted on the host, as (mount point, directory of this systemd's root).</summary>
    public IEnumerable<(string Mount, string Root)> Hierarchies() =>
        HostHierarchies().Select(mount => (mount, mount + Subtree));

    /// <summary>A directory of a cgroup at <paramref name="path"/> as this systemd sees it, in the host's view of hierarchy <paramref name="mount"/>.</summary>
    public string HostDirectory(string mount, string path) => mount + Subtree + path;

    /// <summary>The arguments that run a program inside this systemd's namespaces (pid, mount, cgroup, UTS, IPC):
    /// `nsenter ... -- program args` (nsenter forks it, as the pid namespace is only entered by children).</summary>
    public IReadOnlyList<string> Enter() =>
        ["nsenter", "-t", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-p", "-m", "-C", "-u", "-i", "--"];

    /// <summary>Runs a program inside the namespaces to completion (systemctl, cat, ...).</summary>
    public (int Exit, string Stdout, string Stderr) Run(params string[] command)
    {
        var enter = Enter();
        return TestProcesses.Run(TimeSpan.FromSeconds(60), enter[0], [.. enter.Skip(1), .. command]);
    }

    /// <summary>A property of a unit as `systemctl show -P` prints it ("" for an unknown unit's).</summary>
    public string Show(string unit, string property) => Run("systemctl", "show", "-P", property, unit).Stdout.Trim();

    /// <summary>Starts systemd and waits until it is running its test target with the bus up.</summary>
    public static TestSystemd Start()
    {
        if (SkipReason() is { } why)
        {
            throw new InvalidOperationException(why);
        }

        var subtree = "/nacelle-test-systemd-" + Guid.NewGuid().ToString("N")[..8];
        var directory = Directory.CreateTempSubdirectory("nacelle-test-systemd-").FullName;
        var units = Path.Combine(directory, "units");
        var empty = Path.Combine(directory, "empty");
        Directory.CreateDirectory(units);
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(units, "nacelle-test.target"), "[Unit]\nDescription=nacelle test systemd\nWants=dbus.socket dbus.service\n");
        File.WriteAllText(Path.Combine(units, "dbus.socket"), "[Unit]\nDescription=D-Bus system bus socket\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n");
        File.WriteAllText(Path.Combine(units, "dbus.service"),
            "[Unit]\nDescription=D-Bus system bus\nRequires=dbus.socket\n[Service]\nType=notify\nNotifyAccess=main\n" +
            "ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --nosyslog\n");
        File.WriteAllText(Path.Combine(directory, "console"), string.Empty);

        // Inside the new namespaces (the launcher has already joined the subtree): a private /run, a read-only
        // /proc/sys, a file as /dev/console, fresh cgroup mounts rooted at the subtree; then systemd.
        var mounts = string.Join('\n', HostHierarchies().Select(mount =>
        {
            var name = Path.GetFileName(mount);
            return name == "unified"
                ? "mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified"
                : name == "systemd"
                    ? "mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd"
                    : $"mkdir -p /sys/fs/cgroup/{name} && mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}";
        }));
        var inner = Path.Combine(directory, "inner.sh");
        File.WriteAllText(inner, $"""
            #!/bin/sh
            set -e
            mount --make-rprivate /
            mount -t tmpfs -o mode=755 tmpfs /run
            mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
            mount --bind {directory}/console /dev/console
            mount -t tmpfs -o mode=755 cgroup-root /sys/fs/cgroup
            {mounts}
            exec env -i container=nacelle-test SYSTEMD_UNIT_PATH={units} SYSTEMD_GENERATOR_PATH={empty} SYSTEMD_ENVIRONMENT_GENERATOR_PATH={empty} \
                {Binary} --system --unit=nacelle-test.target --log-target=console --log-level=notice
            """.Replace("\r", string.Empty, StringComparison.Ordinal));
        var joins = string.Join('\n', HostHierarchies().Select(mount =>
            $"mkdir -p '{mount}{subtree}' && " +
            (Path.GetFileName(mount) == "cpuset"
                ? $"cat '{mount}/cpuset.cpus' > '{mount}{subtree}/cpuset.cpus' && cat '{mount}/cpuset.mems' > '{mount}{subtree}/cpuset.mems' && "
                : string.Empty) +
            $"echo $$ > '{mount}{subtree}/cgroup.procs'"));
        var outer = Path.Combine(directory, "outer.sh");
        File.WriteAllText(outer, $"#!/bin/sh\nset -e\n{joins}\nexec unshare --pid --mount --cgroup --uts --ipc --fork --mount-proc sh {inner}\n");

        var info = new ProcessStartInfo("sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        info.ArgumentList.Add(outer);
        var launcher = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        launcher.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        launcher.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        launcher.BeginOutputReadLine();
        launcher.BeginErrorReadLine();
        launcher.StandardInput.Close();

        var clock = Stopwatch.StartNew();
        int? pid = null;
        while (clock.Elapsed < StartTimeout)
        {
            if (launcher.HasExited)
            {
                break;
            }

            // unshare --fork: systemd is the unshare's only child once the inner script has exec'd it (before that the
            // launcher's children are the outer script's mkdir and cat, and then the inner sh).
            if (pid is null && Children(launcher.Id).FirstOrDefault(child => Comm(child) == "systemd") is var child && child > 0)
            {
                pid = child;
            }

            if (pid is { } p && File.Exists($"/proc/{p}/root/run/dbus/system_bus_socket")
                && TestProcesses.Run(TimeSpan.FromSeconds(30), "nsenter", "-t", p.ToString(System.Globalization.CultureInfo.InvariantCulture), "-p", "-m", "--",
                    "systemctl", "is-active", "nacelle-test.target", "dbus.service").Exit == 0)
            {
                return new TestSystemd(subtree, directory, launcher, p);
            }

            Thread.Sleep(100);
        }

        var started = new TestSystemd(subtree, directory, launcher, pid ?? 0);
        started.Dispose();
        lock (output)
        {
            throw new InvalidOperationException($"the test systemd did not come up within {StartTimeout.TotalSeconds} s:\n{output}");
        }
    }

    private static IEnumerable<int> Children(int pid)
    {
        foreach (var task in Directory.Exists($"/proc/{pid}/task") ? Directory.GetDirectories($"/proc/{pid}/task") : [])
        {
            var text = File.Exists(Path.Combine(task, "children")) ? File.ReadAllText(Path.Combine(task, "children")) : string.Empty;
            foreach (var child in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return int.Parse(child, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    private static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    // The mounted hierarchies, from mountinfo: each v1 hierarchy (controllers and name=systemd) and the cgroup2 mount.
    private static IReadOnlyList<string> HostHierarchies() =>
        [.. File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => line.Split(' '))
            .Where(f => Array.IndexOf(f, "-") is var dash && dash > 0 && f[dash + 1] is "cgroup" or "cgroup2" && f[4].StartsWith("/sys/fs/cgroup/", StringComparison.Ordinal))
            .Select(f => f[4])
            .Distinct()];

    public void Dispose()
    {
        // PID 1 of the namespace gone: the kernel kills every other process in it (daemons, monitors, containers).
        // (A start that timed out may not have seen systemd yet: it is the launcher's child named systemd, if any.)
        var pid = Pid > 0 ? Pid : _launcher.HasExited ? 0 : Children(_launcher.Id).FirstOrDefault(child => Comm(child) == "systemd");
        if (pid > 0)
        {
            Nacelle.ContainerCore.Interop.Signals.Send(pid, Nacelle.ContainerCore.Interop.Signals.SIGKILL);
        }

        if (!_launcher.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            _launcher.Kill(entireProcessTree: true);
            _launcher.WaitForExit();
        }

        _launcher.Dispose();
        TestCgroups.KillTree(Subtree);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                TestCgroups.RemoveTree(Subtree);
                break;
            }
            catch (IOException) when (attempt < 50)
            {
                Thread.Sleep(100); // the last processes are still leaving
            }
        }

        Directory.Delete(_directory, recursive: true);
    }
}
