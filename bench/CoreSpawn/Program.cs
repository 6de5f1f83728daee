using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Runtime;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ContainerCore.Spec;

// Usage: Nacelle.Bench.CoreSpawn [--iterations N] [--warmup W] [--runc PATH] [--state-base DIR]
// Runs as root. Builds one bundle (busybox rootfs + the serialized SpecDefaults.Container(rootfs, ["/bin/true"])) and,
// interleaved so machine drift hits both alike, runs N containers (after W warm-ups) with:
//   nacelle: ContainerRuntime.CreateAsync + StartAsync + WaitAsync + DeleteAsync in this process (stdio /dev/null);
//   runc:    `runc --root <tmp> run --bundle <runc bundle> <id>` started with System.Diagnostics.Process.
// The runc bundle holds only a config.json: the same JSON, same rootfs, plus linux.cgroupsPath so runc's cgroups land
// under this run's parent (without it runc nests them under its own cgroup, which differs per controller here).
// Extra rows: nacelle's create/start->exit/delete phases, runc with --no-new-keyring, and the floor of starting
// /bin/true with Process (what runc pays for being a separate program), and a second table of CPU time per container
// (getrusage), which other load on the machine disturbs far less than wall time. Cleans up containers, cgroups and
// temp dirs, failed or not.
// Both state directories (nacelle's state.json files, runc's --root) live under --state-base, by default /dev/shm when
// it is a tmpfs: on a real node they are under /run, a tmpfs; on a disk file system every state.json write and
// unlink can wait for the disk (both runtimes write one per container), which would measure the disk, not the runtimes.
var iterations = 50;
var warmup = 3;
string? runc = null;
string? stateBase = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--iterations" or "-n":
            iterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--warmup":
            warmup = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--runc":
            runc = args[++i];
            break;
        case "--state-base":
            stateBase = args[++i];
            break;
        case "--help" or "-h":
            Console.WriteLine("Nacelle.Bench.CoreSpawn [--iterations N (50)] [--warmup W (3)] [--runc PATH (from PATH)] [--state-base DIR (/dev/shm if tmpfs, else the temp dir)]");
            return 0;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

if (Environment.UserName != "root")
{
    Console.Error.WriteLine("run as root (containers need namespaces and cgroups)");
    return 2;
}

runc ??= FindOnPath("runc");
if (runc is null || !File.Exists(runc))
{
    Console.Error.WriteLine("runc not found (give --runc PATH)");
    return 2;
}

const string Busybox = "/bin/busybox";
if (!File.Exists(Busybox))
{
    Console.Error.WriteLine($"{Busybox} is missing (the rootfs is built from it)");
    return 2;
}

var tag = Guid.NewGuid().ToString("N")[..10];
var cgroupRoot = "/nacelle-bench-" + tag;
stateBase ??= FileSystemType("/dev/shm") == "tmpfs" ? "/dev/shm" : Path.GetTempPath();
var work = Directory.CreateTempSubdirectory("nacelle-corespawn-").FullName;
var stateWork = Path.Combine(stateBase, "nacelle-corespawn-state-" + tag);
var bundle = Path.Combine(work, "bundle");
var rootfs = Path.Combine(bundle, "rootfs");
var runcBundle = Path.Combine(work, "runc-bundle");
var runcState = Path.Combine(stateWork, "runc");
var cgroups = new CgroupManager(CgroupLayout.Detect(), cgroupRoot + "/nacelle");
var runtime = new ContainerRuntime(new ContainerRuntimeOptions { StateDirectory = Path.Combine(stateWork, "nacelle"), Cgroups = cgroups });
var exitCode = 0;
try
{
    BuildRootfs(rootfs);
    var json = RuntimeSpecFile.Serialize(SpecDefaults.Container(rootfs, ["/bin/true"]));
    File.WriteAllText(Path.Combine(bundle, "config.json"), json);
    Directory.CreateDirectory(runcBundle);
    Directory.CreateDirectory(runcState);
    var runcConfig = JsonNode.Parse(json)!.AsObject();

    var nacelleTotal = new List<double>();
    var nacelleCreate = new List<double>();
    var nacelleStart = new List<double>();
    var nacelleDelete = new List<double>();
    var runcTotal = new List<double>();
    var runcNoKeyring = new List<double>();
    var processFloor = new List<double>();
    var nacelleCpu = new List<double>();
    var runcCpu = new List<double>();
    var runcNoKeyringCpu = new List<double>();

    // A first run of each, checked, so a rejected bundle fails loudly before anything is measured.
    await RunNacelle("check-" + tag);
    await RunRunc("check-" + tag, []);

    for (var i = 0; i < warmup + iterations; i++)
    {
        var measured = i >= warmup;
        var id = $"b{i}-{tag}";
        var cpu0 = CpuTime();
        var (create, start, delete) = await RunNacelle("n" + id);
        var cpu1 = CpuTime();
        var runcMs = await RunRunc("r" + id, []);
        var cpu2 = CpuTime();
        var runcNk = await RunRunc("k" + id, ["--no-new-keyring"]);
        var cpu3 = CpuTime();
        var floor = await RunProcess("/bin/true", [], null);
        if (measured)
        {
            nacelleCreate.Add(create);
            nacelleStart.Add(start);
            nacelleDelete.Add(delete);
            nacelleTotal.Add(create + start + delete);
            runcTotal.Add(runcMs);
            runcNoKeyring.Add(runcNk);
            processFloor.Add(floor);
            nacelleCpu.Add(cpu1.Self - cpu0.Self + cpu1.Children - cpu0.Children);
            runcCpu.Add(cpu2.Children - cpu1.Children);
            runcNoKeyringCpu.Add(cpu3.Children - cpu2.Children);
        }

        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(measured ? "run" : "warm-up")} {(measured ? i - warmup + 1 : i + 1)}: nacelle {create + start + delete:F1} ms (create {create:F1}, start->exit {start:F1}, delete {delete:F1}), runc {runcMs:F1} ms, runc --no-new-keyring {runcNk:F1} ms, Process /bin/true {floor:F1} ms"));
    }

    var reference = Median(runcTotal);
    var kernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
    var cpuModel = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown cpu";
    var runcVersion = (await Capture(runc, ["--version"])).Split('\n')[0].Trim();
    var cgroupMode = cgroups.Layout.Mode.ToString().ToLowerInvariant();
    var stateFs = FileSystemType(stateWork) ?? "unknown";
    var bundleFs = FileSystemType(bundle) ?? "unknown";
    Console.WriteLine();
    Console.WriteLine($"nacelle core vs runc: create+start+wait+delete of /bin/true, {iterations} iterations after {warmup} warm-ups, interleaved");
    Console.WriteLine($"machine: kernel {kernel}, {Environment.ProcessorCount} cores ({cpuModel}), cgroup {cgroupMode}, {runcVersion}, .NET {Environment.Version}, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end");
    Console.WriteLine($"bundle on {bundleFs} ({bundle}), state directories on {stateFs} ({stateWork})");
    Console.WriteLine();
    Console.WriteLine("| runtime | median ms | p90 ms | min ms | ratio (median vs runc) |");
    Console.WriteLine("|---|---:|---:|---:|---:|");
    Row("nacelle (create+start+wait+delete)", nacelleTotal);
    Row("runc run (reference)", runcTotal);
    Row("nacelle create only (to parked init)", nacelleCreate);
    Row("nacelle start only (start to exit seen)", nacelleStart);
    Row("nacelle delete only", nacelleDelete);
    Row("runc run --no-new-keyring", runcNoKeyring);
    Row("Process.Start /bin/true (exec floor)", processFloor);
    Console.WriteLine();
    // CPU time is far less sensitive to other load on the machine than wall time (it does not count waiting to run).
    Console.WriteLine("CPU time per container (user+sys; nacelle: this process and its reaped children, the helper and the");
    Console.WriteLine("container; runc: the runc process and everything it reaped; kernel work in kworkers is not counted for either):");
    Console.WriteLine();
    Console.WriteLine("| runtime | CPU median ms | p90 ms | min ms | ratio (median vs runc) |");
    Console.WriteLine("|---|---:|---:|---:|---:|");
    var cpuReference = Median(runcCpu);
    CpuRow("nacelle (create+start+wait+delete)", nacelleCpu);
    CpuRow("runc run (reference)", runcCpu);
    CpuRow("runc run --no-new-keyring", runcNoKeyringCpu);
    Console.WriteLine();
    var speedup = reference / Median(nacelleTotal);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"target: nacelle >= 3x faster than runc: {speedup:F2}x ({Median(nacelleTotal):F1} ms vs {reference:F1} ms) {(speedup >= 3 ? "PASS" : "MISS")}"));

    void CpuRow(string name, List<double> values) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {Median(values):F2} | {P90(values):F2} | {values.Min():F2} | {Median(values) / cpuReference:F2}x |"));

    void Row(string name, List<double> values) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {Median(values):F2} | {P90(values):F2} | {values.Min():F2} | {Median(values) / reference:F2}x |"));

    async Task<(double Create, double Start, double Delete)> RunNacelle(string id)
    {
        var t0 = Stopwatch.GetTimestamp();
        await runtime.CreateAsync(id, bundle, SpawnStdio.Null);
        var t1 = Stopwatch.GetTimestamp();
        await runtime.StartAsync(id);
        var state = await runtime.WaitAsync(id).WaitAsync(TimeSpan.FromSeconds(60));
        var t2 = Stopwatch.GetTimestamp();
        await runtime.DeleteAsync(id);
        var t3 = Stopwatch.GetTimestamp();
        if (state.ExitCode != 0)
        {
            throw new InvalidOperationException($"nacelle container {id} exited with {state.ExitCode} (signal {state.ExitSignal})");
        }

        return (Ms(t0, t1), Ms(t1, t2), Ms(t2, t3));
    }

    async Task<double> RunRunc(string id, string[] extra)
    {
        // Untimed: this container's own cgroup under the run's parent, like nacelle's.
        runcConfig["linux"]!["cgroupsPath"] = $"{cgroupRoot}/runc/{id}";
        await File.WriteAllTextAsync(Path.Combine(runcBundle, "config.json"), runcConfig.ToJsonString());
        return await RunProcess(runc, ["--root", runcState, "run", .. extra, "--bundle", runcBundle, id], id);
    }
}
catch (Exception e)
{
    Console.Error.WriteLine($"benchmark failed: {e}");
    exitCode = 1;
}
finally
{
    foreach (var state in runtime.List())
    {
        try
        {
            await runtime.DeleteAsync(state.Id, force: true);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"cleanup: nacelle delete {state.Id}: {e.Message}");
        }
    }

    await runtime.DisposeAsync();
    try
    {
        foreach (var id in (await Capture(runc, ["--root", runcState, "list", "-q"])).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await Capture(runc, ["--root", runcState, "delete", "--force", id.Trim()]);
        }
    }
    catch (Exception e)
    {
        Console.Error.WriteLine($"cleanup: runc list/delete: {e.Message}");
    }

    RemoveCgroupTrees(cgroupRoot);
    foreach (var dir in new[] { work, stateWork })
    {
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"cleanup: rm -r {dir}: {e.Message}");
        }
    }
}

return exitCode;

static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

// getrusage(2), user+sys in ms: this process (all threads) and its waited-for children (and theirs).
static (double Self, double Children) CpuTime()
{
    static double Total(in Rusage r) => ((r.UserSec + r.SysSec) * 1000.0) + ((r.UserUsec + r.SysUsec) / 1000.0);
    if (NativeCalls.getrusage(0, out var self) != 0 || NativeCalls.getrusage(-1, out var children) != 0)
    {
        throw new InvalidOperationException($"getrusage: errno {Marshal.GetLastPInvokeError()}");
    }

    return (Total(self), Total(children));
}

// Starts a program (stdin closed, stdout/stderr drained) and returns the time from Process.Start to its exit.
// With a container id, a non-zero exit throws with what it printed.
static async Task<double> RunProcess(string file, string[] arguments, string? what)
{
    var info = new ProcessStartInfo(file)
    {
        UseShellExecute = false,
        RedirectStandardInput = true,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    foreach (var arg in arguments)
    {
        info.ArgumentList.Add(arg);
    }

    var t0 = Stopwatch.GetTimestamp();
    using var process = Process.Start(info)!;
    process.StandardInput.Close();
    var stdout = process.StandardOutput.ReadToEndAsync();
    var stderr = process.StandardError.ReadToEndAsync();
    try
    {
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }
    catch (TimeoutException)
    {
        process.Kill(); // the process this benchmark started, nothing else
        throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not exit within 60 s");
    }

    var elapsed = Ms(t0, Stopwatch.GetTimestamp());
    if (process.ExitCode != 0)
    {
        throw new InvalidOperationException(
            $"{file} {string.Join(' ', arguments)} ({what}) exited with {process.ExitCode}: {(await stderr).Trim()} {(await stdout).Trim()}");
    }

    return elapsed;
}

static async Task<string> Capture(string file, string[] arguments)
{
    var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var arg in arguments)
    {
        info.ArgumentList.Add(arg);
    }

    using var process = Process.Start(info)!;
    var stdout = process.StandardOutput.ReadToEndAsync();
    var stderr = process.StandardError.ReadToEndAsync();
    await process.WaitForExitAsync();
    return await stdout + await stderr;
}

// The file system type of the mount that holds path (the longest matching mount point in mountinfo).
static string? FileSystemType(string path)
{
    var full = Path.GetFullPath(path);
    string? best = null;
    var bestLength = -1;
    foreach (var line in File.ReadLines("/proc/self/mountinfo"))
    {
        var parts = line.Split(" - ", 2);
        var mountPoint = parts[0].Split(' ')[4];
        var covers = mountPoint == "/" || full == mountPoint || full.StartsWith(mountPoint + "/", StringComparison.Ordinal);
        if (parts.Length == 2 && covers && mountPoint.Length >= bestLength)
        {
            best = parts[1].Split(' ')[0];
            bestLength = mountPoint.Length;
        }
    }

    return best;
}

static string? FindOnPath(string name) =>
    (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    .Split(':', StringSplitOptions.RemoveEmptyEntries)
    .Append("/usr/sbin").Append("/sbin")
    .Select(dir => Path.Combine(dir, name))
    .FirstOrDefault(File.Exists);

// A busybox root file system: /bin/busybox plus applet links, the usual empty mount points, passwd and group.
static void BuildRootfs(string rootfs)
{
    foreach (var dir in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "root" })
    {
        Directory.CreateDirectory(Path.Combine(rootfs, dir));
    }

    File.Copy("/bin/busybox", Path.Combine(rootfs, "bin/busybox"));
    foreach (var applet in new[] { "sh", "true", "false", "cat", "ls", "echo", "sleep" })
    {
        File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
    }

    File.WriteAllText(Path.Combine(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    File.WriteAllText(Path.Combine(rootfs, "etc/group"), "root:x:0:\n");
}

// rmdir, deepest first, of <path> in every mounted cgroup hierarchy (v1 controllers, name=systemd, cgroup2).
static void RemoveCgroupTrees(string path)
{
    var mounts = File.ReadLines("/proc/self/mountinfo")
        .Select(line => line.Split(" - ", 2))
        .Where(parts => parts.Length == 2 && (parts[1].StartsWith("cgroup ", StringComparison.Ordinal) || parts[1].StartsWith("cgroup2 ", StringComparison.Ordinal)))
        .Select(parts => parts[0].Split(' ')[4])
        .Distinct(StringComparer.Ordinal);
    foreach (var mount in mounts)
    {
        var top = mount.TrimEnd('/') + path;
        if (!Directory.Exists(top))
        {
            continue;
        }

        var dirs = Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories)
            .OrderByDescending(d => d.Count(c => c == '/')).Append(top);
        foreach (var dir in dirs)
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    Directory.Delete(dir, recursive: false);
                    break;
                }
                catch (DirectoryNotFoundException)
                {
                    break;
                }
                catch (IOException e) when (attempt < 50)
                {
                    _ = e;
                    Thread.Sleep(20);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"cleanup: rmdir {dir}: {e.Message}");
                    break;
                }
            }
        }
    }
}

static double Median(List<double> values) => Percentile(values, 0.5);

static double P90(List<double> values) => Percentile(values, 0.9);

static double Percentile(List<double> values, double p)
{
    var sorted = values.Order().ToArray();
    var rank = p * (sorted.Length - 1);
    var low = (int)Math.Floor(rank);
    var high = (int)Math.Ceiling(rank);
    return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
}

// struct rusage on 64-bit Linux: two timevals, then 14 longs.
[StructLayout(LayoutKind.Sequential)]
internal struct Rusage
{
    public long UserSec;
    public long UserUsec;
    public long SysSec;
    public long SysUsec;
    [MarshalAs(UnmanagedType.ByValArray, SizeConst = 14)]
    public long[] Rest;
}

internal static class NativeCalls
{
    [DllImport("libc", SetLastError = true)]
    internal static extern int getrusage(int who, out Rusage usage);
}
