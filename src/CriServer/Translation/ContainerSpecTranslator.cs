using System.Globalization;
using System.Text;
using System.Text.Json;
using Nacelle.Common;
using Nacelle.ContainerCore.Security;
using Nacelle.ContainerCore.Security.Seccomp;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;
using Runtime.V1;

namespace Nacelle.CriServer.Translation;

/// <summary>
/// CreateContainer's translation: CRI ContainerConfig + PodSandboxConfig + image config + what the pod layer knows ->
/// the container's OCI runtime spec, following containerd's CRI plugin wherever kubelet relies on a behaviour.
/// Pure except for <see cref="ITranslationHost"/> (Localhost seccomp profiles, device nodes). Everything refused is a
/// <see cref="NacelleException"/> (InvalidArgument, or Unimplemented for features nacelle does not have) whose message
/// names the CRI field.
/// </summary>
public sealed class ContainerSpecTranslator(ITranslationHost host)
{
    private const string Sc = "linux.security_context";
    private const string Ns = Sc + ".namespace_options";
    private const string Res = "linux.resources";

    /// <summary>Annotation keys containerd sets on every container (tools read them).</summary>
    public const string ContainerTypeAnnotation = "io.kubernetes.cri.container-type";
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";
    public const string SandboxNameAnnotation = "io.kubernetes.cri.sandbox-name";
    public const string SandboxNamespaceAnnotation = "io.kubernetes.cri.sandbox-namespace";
    public const string SandboxUidAnnotation = "io.kubernetes.cri.sandbox-uid";
    public const string ContainerNameAnnotation = "io.kubernetes.cri.container-name";
    public const string ImageNameAnnotation = "io.kubernetes.cri.image-name";

    public ContainerSpecResult Translate(ContainerConfig config, PodSandboxConfig sandbox, ImageConfig image, PodRuntimeContext context)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sandbox);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(context);

        if (string.IsNullOrEmpty(config.Metadata?.Name))
        {
            throw Invalid("metadata.name", "is required");
        }

        if (config.CDIDevices.Count > 0)
        {
            throw NacelleException.Unimplemented($"CDI_devices[0]: CDI devices are not supported (\"{config.CDIDevices[0].Name}\")");
        }

        var sc = config.Linux?.SecurityContext ?? new LinuxContainerSecurityContext();
        var podSc = sandbox.Linux?.SecurityContext;
        var privileged = sc.Privileged;
        if (privileged && podSc?.Privileged != true)
        {
            throw Invalid($"{Sc}.privileged", "a privileged container needs a privileged pod sandbox");
        }

        var notes = new List<string>();
        var nsOptions = sc.NamespaceOptions ?? podSc?.NamespaceOptions ?? new NamespaceOption();
        var hostNetwork = nsOptions.Network == NamespaceMode.Node;

        if (string.IsNullOrEmpty(context.RootfsPath))
        {
            throw NacelleException.Internal("rootfs: the pod layer gave no rootfs path");
        }

        var spec = new RuntimeSpec
        {
            Root = new SpecRoot { Path = context.RootfsPath, Readonly = sc.ReadonlyRootfs },
            Linux = new SpecLinux { CgroupsPath = string.IsNullOrEmpty(context.CgroupsPath) ? null : context.CgroupsPath },
        };

        spec.Linux.Namespaces = Namespaces(nsOptions, privileged, context);

        var podHostname = string.IsNullOrEmpty(context.Hostname) ? sandbox.Hostname : context.Hostname;
        string hostname;
        if (hostNetwork)
        {
            hostname = string.IsNullOrEmpty(podHostname) ? context.NodeHostname : podHostname;
        }
        else
        {
            hostname = podHostname;
            spec.Hostname = string.IsNullOrEmpty(podHostname) ? null : podHostname;
        }

        var user = User(sc, image, context);
        spec.Process = new SpecProcess
        {
            Terminal = config.Tty,
            Args = Args(config, image),
            Cwd = WorkingDir(config, image),
            Env = Env(config, image, hostname, user),
            User = new SpecUser { Uid = user.Uid, Gid = user.Gid, AdditionalGids = [.. user.AdditionalGids] },
            Capabilities = CapabilitySet(sc, privileged, context.HostLastCap, context.HostCapabilities),
            NoNewPrivileges = sc.NoNewPrivs,
        };

        spec.Mounts = Mounts(config, sc, nsOptions, privileged, context);
        foreach (var mount in spec.Mounts)
        {
            if (mount.Options.Contains("rshared"))
            {
                spec.Linux.RootfsPropagation = "rshared";
            }
            else if (mount.Options.Contains("rslave") && spec.Linux.RootfsPropagation != "rshared")
            {
                spec.Linux.RootfsPropagation = "rslave";
            }
        }

        var (devices, rules) = Devices(config, privileged);
        spec.Linux.Devices = devices;
        spec.Linux.Resources = new SpecResources { Devices = rules };
        Resources(config.Linux?.Resources, spec.Linux.Resources, spec.Process);

        if (!privileged)
        {
            spec.Linux.Seccomp = Seccomp(sc, context);
            spec.Linux.MaskedPaths = Paths(sc.MaskedPaths, LinuxDefaults.MaskedPaths, $"{Sc}.masked_paths");
            spec.Linux.ReadonlyPaths = Paths(sc.ReadonlyPaths, LinuxDefaults.ReadonlyPaths, $"{Sc}.readonly_paths");
        }

        Notes(sc, notes);

        foreach (var (key, value) in config.Annotations)
        {
            spec.Annotations[key] = value;
        }

        spec.Annotations[ContainerTypeAnnotation] = "container";
        spec.Annotations[SandboxIdAnnotation] = context.PodId;
        spec.Annotations[SandboxNameAnnotation] = sandbox.Metadata?.Name ?? string.Empty;
        spec.Annotations[SandboxNamespaceAnnotation] = sandbox.Metadata?.Namespace ?? string.Empty;
        spec.Annotations[SandboxUidAnnotation] = sandbox.Metadata?.Uid ?? string.Empty;
        spec.Annotations[ContainerNameAnnotation] = config.Metadata.Name;
        spec.Annotations[ImageNameAnnotation] = config.Image?.Image ?? string.Empty;

        var (signal, signalName) = StopSignal(config, image);
        return new ContainerSpecResult(
            spec,
            LogPath(config, sandbox, context),
            signal,
            signalName,
            config.Tty,
            config.Stdin,
            config.StdinOnce,
            user,
            notes);
    }

    // ---- namespaces ---------------------------------------------------------------------------------------------

    private static List<SpecNamespace> Namespaces(NamespaceOption options, bool privileged, PodRuntimeContext context)
    {
        var list = new List<SpecNamespace>();
        if (options.UsernsOptions is { } userns && userns.Mode != NamespaceMode.Node)
        {
            if (userns.Mode == NamespaceMode.Pod)
            {
                throw NacelleException.Unimplemented($"{Ns}.userns_options.mode: user namespaces are not supported");
            }

            throw Invalid($"{Ns}.userns_options.mode", $"{userns.Mode} is not POD or NODE");
        }

        switch (options.Pid)
        {
            case NamespaceMode.Pod:
                list.Add(Join("pid", context.PidNamespacePath, $"{Ns}.pid", "POD: the pod has no shared pid namespace"));
                break;
            case NamespaceMode.Container:
                list.Add(new SpecNamespace { Type = "pid" });
                break;
            case NamespaceMode.Node:
                break;
            case NamespaceMode.Target:
                if (string.IsNullOrEmpty(options.TargetId))
                {
                    throw Invalid($"{Ns}.target_id", "is required when pid is TARGET");
                }

                list.Add(Join("pid", context.TargetPidNamespacePath, $"{Ns}.pid",
                    $"TARGET: no pid namespace is known for container \"{options.TargetId}\""));
                break;
            default:
                throw Invalid($"{Ns}.pid", $"unknown mode {(int)options.Pid}");
        }

        switch (options.Network)
        {
            case NamespaceMode.Node:
                break;
            case NamespaceMode.Pod:
                list.Add(Join("network", context.NetworkNamespacePath, $"{Ns}.network", "POD: the pod has no network namespace"));
                list.Add(Join("uts", context.UtsNamespacePath, $"{Ns}.network", "POD: the pod has no uts namespace"));
                break;
            default:
                throw Invalid($"{Ns}.network", $"{options.Network} is not supported: a container uses its pod's network (POD) or the node's (NODE)");
        }

        switch (options.Ipc)
        {
            case NamespaceMode.Node:
                break;
            case NamespaceMode.Pod:
                list.Add(Join("ipc", context.IpcNamespacePath, $"{Ns}.ipc", "POD: the pod has no ipc namespace"));
                break;
            case NamespaceMode.Container:
                list.Add(new SpecNamespace { Type = "ipc" });
                break;
            default:
                throw Invalid($"{Ns}.ipc", $"{options.Ipc} is not supported for ipc");
        }

        list.Add(new SpecNamespace { Type = "mount" });

        // containerd: a private cgroup namespace hides the host's hierarchy, on v2 only and not for privileged containers.
        if (context.CgroupV2 && !privileged)
        {
            list.Add(new SpecNamespace { Type = "cgroup" });
        }

        return list;
    }

    private static SpecNamespace Join(string type, string? path, string field, string missing)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, missing);
        }

        return new SpecNamespace { Type = type, Path = path };
    }

    // ---- process ------------------------------------------------------------------------------------------------

    /// <summary>Docker's rule: command replaces the entrypoint and drops the image's cmd; args replaces the cmd.</summary>
    private static List<string> Args(ContainerConfig config, ImageConfig image)
    {
        var command = config.Command.ToList();
        var args = config.Args.ToList();
        if (command.Count == 0)
        {
            if (args.Count == 0)
            {
                args = [.. image.Cmd];
            }

            // An entrypoint of [""] is Docker's "reset the entrypoint".
            if (!(image.Entrypoint.Count == 1 && image.Entrypoint[0].Length == 0))
            {
                command = [.. image.Entrypoint];
            }
        }

        var all = command.Concat(args).ToList();
        if (all.Count == 0)
        {
            throw Invalid("command", "no command specified: neither the config (command, args) nor the image (Entrypoint, Cmd) gives one");
        }

        if (all[0].Length == 0)
        {
            throw Invalid(config.Command.Count > 0 ? "command[0]" : "args[0]", "no command specified: the program name is empty");
        }

        return all;
    }

    private static string WorkingDir(ContainerConfig config, ImageConfig image)
    {
        if (!string.IsNullOrEmpty(config.WorkingDir))
        {
            if (!config.WorkingDir.StartsWith('/'))
            {
                throw Invalid("working_dir", $"'{config.WorkingDir}' must be absolute");
            }

            return config.WorkingDir;
        }

        if (!string.IsNullOrEmpty(image.WorkingDir))
        {
            if (!image.WorkingDir.StartsWith('/'))
            {
                throw Invalid("image config WorkingDir", $"'{image.WorkingDir}' must be absolute");
            }

            return image.WorkingDir;
        }

        return "/";
    }

    /// <summary>PATH (default), HOSTNAME, the image's env, then the config's envs, each later one replacing an earlier
    /// variable of the same name in place; HOME from /etc/passwd when nothing set it.</summary>
    private static List<string> Env(ContainerConfig config, ImageConfig image, string hostname, ResolvedUser user)
    {
        var env = new List<KeyValuePair<string, string>>();
        void Set(string key, string value)
        {
            var i = env.FindIndex(e => e.Key == key);
            if (i >= 0)
            {
                env[i] = new(key, value);
            }
            else
            {
                env.Add(new(key, value));
            }
        }

        Set("PATH", LinuxDefaults.Path);
        Set("HOSTNAME", hostname);
        foreach (var entry in image.Env)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                env.RemoveAll(e => e.Key == entry); // "NAME" without a value unsets it (containerd)
            }
            else if (eq > 0)
            {
                Set(entry[..eq], entry[(eq + 1)..]);
            }
        }

        for (var i = 0; i < config.Envs.Count; i++)
        {
            var key = config.Envs[i].Key;
            if (string.IsNullOrEmpty(key))
            {
                throw Invalid($"envs[{i}].key", "must not be empty");
            }

            if (key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid($"envs[{i}].key", $"'{key}' must not contain '=' or NUL");
            }

            var value = Encoding.UTF8.GetString(config.Envs[i].Value.Span);
            if (value.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid($"envs[{i}].value", "must not contain NUL");
            }

            Set(key, value);
        }

        if (!env.Exists(e => e.Key == "HOME"))
        {
            env.Add(new("HOME", user.Home ?? "/"));
        }

        return env.Select(e => $"{e.Key}={e.Value}").ToList();
    }

    private static ResolvedUser User(LinuxContainerSecurityContext sc, ImageConfig image, PodRuntimeContext context)
    {
        string user;
        string? group = null;
        string field;
        if (sc.RunAsGroup is { } runAsGroup)
        {
            CheckId(runAsGroup.Value, $"{Sc}.run_as_group");
            group = runAsGroup.Value.ToString(CultureInfo.InvariantCulture);
        }

        if (sc.RunAsUser is { } runAsUser)
        {
            CheckId(runAsUser.Value, $"{Sc}.run_as_user");
            user = runAsUser.Value.ToString(CultureInfo.InvariantCulture);
            field = $"{Sc}.run_as_user";
        }
        else if (!string.IsNullOrEmpty(sc.RunAsUsername))
        {
            user = sc.RunAsUsername;
            field = $"{Sc}.run_as_username";
        }
        else
        {
            if (group is not null)
            {
                throw Invalid($"{Sc}.run_as_group", "is set without run_as_user or run_as_username");
            }

            (user, group) = ImageUsers.SplitImageUser(image.User ?? string.Empty);
            if (user.Length == 0)
            {
                if (!string.IsNullOrEmpty(group))
                {
                    throw Invalid("image config User", $"'{image.User}' has a group but no user");
                }

                user = "0";
            }

            field = "image config User";
        }

        var supplemental = new List<uint>(sc.SupplementalGroups.Count);
        for (var i = 0; i < sc.SupplementalGroups.Count; i++)
        {
            CheckId(sc.SupplementalGroups[i], $"{Sc}.supplemental_groups[{i}]");
            supplemental.Add((uint)sc.SupplementalGroups[i]);
        }

        var merge = sc.SupplementalGroupsPolicy switch
        {
            SupplementalGroupsPolicy.Merge => true,
            SupplementalGroupsPolicy.Strict => false,
            _ => throw Invalid($"{Sc}.supplemental_groups_policy", $"unknown policy {(int)sc.SupplementalGroupsPolicy}"),
        };

        return ImageUsers.Resolve(user, group, field, context.ImagePasswd, context.ImageGroup, merge, supplemental);
    }

    private static void CheckId(long id, string field)
    {
        if (id < 0 || id > ImageUsers.MaxId)
        {
            throw Invalid(field, $"{id} is outside 0..{ImageUsers.MaxId}");
        }
    }

    private static SpecCapabilities CapabilitySet(LinuxContainerSecurityContext sc, bool privileged, int lastCap, ulong? hostCapabilities)
    {
        var host = (hostCapabilities ?? ulong.MaxValue) & Capabilities.MaskUpTo(lastCap);
        if (privileged)
        {
            var all = Capabilities.ToNames(host).ToList();
            return new SpecCapabilities { Bounding = all, Effective = [.. all], Inheritable = [.. all], Permitted = [.. all] };
        }

        var caps = sc.Capabilities;
        var mask = Capabilities.ResolveCri(caps?.AddCapabilities, caps?.DropCapabilities, lastCap);
        if (caps?.AddCapabilities.Any(c => string.Equals(c.Trim(), "ALL", StringComparison.OrdinalIgnoreCase)) == true)
        {
            // "ALL" means all the runtime has; capabilities named one by one are asked for as they are.
            var named = Capabilities.ResolveCri(caps.AddCapabilities.Where(c => !string.Equals(c.Trim(), "ALL", StringComparison.OrdinalIgnoreCase)),
                caps.DropCapabilities, lastCap);
            mask = (mask & host) | named;
        }
        var ambient = Capabilities.ToMask(caps?.AddAmbientCapabilities ?? [], lastCap, $"{Sc}.capabilities.add_ambient_capabilities");

        // An ambient capability must also be permitted and inheritable, or the kernel refuses to raise it.
        mask |= ambient;
        var names = Capabilities.ToNames(mask).ToList();
        var ambientNames = Capabilities.ToNames(ambient).ToList();
        return new SpecCapabilities
        {
            Bounding = names,
            Effective = [.. names],
            Permitted = [.. names],
            Inheritable = ambientNames,
            Ambient = [.. ambientNames],
        };
    }

    // ---- mounts -------------------------------------------------------------------------------------------------

    private static List<SpecMount> Mounts(
        ContainerConfig config, LinuxContainerSecurityContext sc, NamespaceOption ns, bool privileged, PodRuntimeContext context)
    {
        var requested = new List<SpecMount>();
        var destinations = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < config.Mounts.Count; i++)
        {
            var mount = UserMount(config.Mounts[i], $"mounts[{i}]");
            if (!destinations.Add(mount.Destination))
            {
                throw Invalid($"mounts[{i}].container_path", $"'{mount.Destination}' is mounted twice");
            }

            requested.Add(mount);
        }

        // The pod's files, unless the container mounts something there itself (containerd: read-only with the rootfs).
        var extra = new List<SpecMount>();
        void PodFile(string destination, string? source, bool readOnly)
        {
            if (!string.IsNullOrEmpty(source) && !destinations.Contains(destination))
            {
                extra.Add(Bind(destination, source, "rprivate", readOnly, recursiveReadOnly: false));
            }
        }

        PodFile("/etc/hostname", context.HostnamePath, sc.ReadonlyRootfs);
        PodFile("/etc/hosts", context.HostsPath, sc.ReadonlyRootfs);
        PodFile("/etc/resolv.conf", context.ResolvConfPath, sc.ReadonlyRootfs);
        if (!destinations.Contains("/dev/shm") && !destinations.Contains("/dev"))
        {
            var shm = ns.Ipc switch
            {
                NamespaceMode.Node => "/dev/shm",
                NamespaceMode.Pod => context.ShmPath,
                _ => null,
            };
            extra.Add(string.IsNullOrEmpty(shm) ? LinuxDefaults.CreateShmTmpfs() : Bind("/dev/shm", shm, "rprivate", false, false));
        }

        // Parents before children: stable order by depth (containerd's orderedMounts).
        var ordered = extra.Concat(requested).OrderBy(m => Depth(m.Destination)).ToList();
        var all = new HashSet<string>(ordered.Select(m => m.Destination), StringComparer.Ordinal);
        var mounts = LinuxDefaults.CreateMounts(privileged, context.CgroupV2)
            .Where(m => !all.Contains(m.Destination) && !(all.Contains("/dev") && m.Destination.StartsWith("/dev/", StringComparison.Ordinal)))
            .ToList();
        mounts.AddRange(ordered);
        return mounts;
    }

    private static SpecMount UserMount(Mount mount, string at)
    {
        if (mount.Image is { } image && !string.IsNullOrEmpty(image.Image))
        {
            throw NacelleException.Unimplemented($"{at}.image: image volumes are not supported (\"{image.Image}\")");
        }

        if (mount.UidMappings.Count > 0 || mount.GidMappings.Count > 0)
        {
            throw NacelleException.Unimplemented($"{at}.uidMappings: id-mapped mounts are not supported");
        }

        var destination = CleanAbsolute(mount.ContainerPath, $"{at}.container_path");
        if (destination == "/")
        {
            throw Invalid($"{at}.container_path", "must not be /");
        }

        if (string.IsNullOrEmpty(mount.HostPath))
        {
            throw Invalid($"{at}.host_path", "must not be empty");
        }

        if (!mount.HostPath.StartsWith('/'))
        {
            throw Invalid($"{at}.host_path", $"'{mount.HostPath}' must be absolute");
        }

        var propagation = mount.Propagation switch
        {
            MountPropagation.PropagationPrivate => "rprivate",
            MountPropagation.PropagationHostToContainer => "rslave",
            MountPropagation.PropagationBidirectional => "rshared",
            _ => throw Invalid($"{at}.propagation", $"unknown propagation {(int)mount.Propagation}"),
        };

        if (mount.RecursiveReadOnly)
        {
            if (!mount.Readonly)
            {
                throw Invalid($"{at}.recursive_read_only", $"'{destination}' asks for a recursive read-only mount without readonly");
            }

            if (mount.Propagation != MountPropagation.PropagationPrivate)
            {
                throw Invalid($"{at}.recursive_read_only", $"'{destination}' asks for a recursive read-only mount with propagation {propagation}; it needs PROPAGATION_PRIVATE");
            }
        }

        // selinux_relabel is ignored: nacelle does not run with SELinux labels.
        return Bind(destination, mount.HostPath, propagation, mount.Readonly, mount.RecursiveReadOnly);
    }

    private static SpecMount Bind(string destination, string source, string propagation, bool readOnly, bool recursiveReadOnly)
    {
        var options = new List<string> { "rbind", propagation, readOnly ? "ro" : "rw" };
        if (recursiveReadOnly)
        {
            options.Add("rro");
        }

        return new SpecMount { Destination = destination, Type = "bind", Source = source, Options = options };
    }

    private static int Depth(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>An absolute path without empty or "." components; ".." is refused.</summary>
    private static string CleanAbsolute(string path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, "must not be empty");
        }

        if (!path.StartsWith('/'))
        {
            throw Invalid(field, $"'{path}' must be absolute");
        }

        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw Invalid(field, $"'{path}' must not contain '..'");
        }

        return "/" + string.Join('/', parts);
    }

    // ---- devices ------------------------------------------------------------------------------------------------

    private (List<SpecDevice> Devices, List<SpecDeviceRule> Rules) Devices(ContainerConfig config, bool privileged)
    {
        var devices = new List<SpecDevice>();
        void Add(HostDevice d, string path)
        {
            devices.RemoveAll(x => x.Path == path);
            devices.Add(new SpecDevice
            {
                Type = d.Type.ToString(), Path = path, Major = d.Major, Minor = d.Minor, FileMode = d.FileMode, Uid = d.Uid, Gid = d.Gid,
            });
        }

        List<SpecDeviceRule> rules;
        if (privileged)
        {
            foreach (var d in host.ListHostDevices())
            {
                Add(d, d.Path);
            }

            rules = [new SpecDeviceRule { Allow = true, Access = "rwm" }];
        }
        else
        {
            foreach (var d in LinuxDefaults.Devices)
            {
                Add(d, d.Path);
            }

            rules = [.. LinuxDefaults.CreateDeviceRules()];
        }

        for (var i = 0; i < config.Devices.Count; i++)
        {
            var at = $"devices[{i}]";
            var request = config.Devices[i];
            if (string.IsNullOrEmpty(request.HostPath) || !request.HostPath.StartsWith('/'))
            {
                throw Invalid($"{at}.host_path", $"'{request.HostPath}' must be an absolute path");
            }

            var path = string.IsNullOrEmpty(request.ContainerPath) ? request.HostPath : request.ContainerPath;
            path = CleanAbsolute(path, $"{at}.container_path");
            if (!path.StartsWith("/dev/", StringComparison.Ordinal))
            {
                throw Invalid($"{at}.container_path", $"'{path}' is not under /dev");
            }

            var permissions = string.IsNullOrEmpty(request.Permissions) ? "rwm" : request.Permissions;
            if (permissions.Any(c => c is not ('r' or 'w' or 'm')) || permissions.Distinct().Count() != permissions.Length)
            {
                throw Invalid($"{at}.permissions", $"'{request.Permissions}' is not a combination of r, w and m");
            }

            var device = host.StatDevice(request.HostPath)
                ?? throw Invalid($"{at}.host_path", $"'{request.HostPath}' is not a character or block device");
            Add(device, path);
            if (!privileged)
            {
                rules.Add(new SpecDeviceRule
                {
                    Allow = true, Type = device.Type.ToString(), Major = device.Major, Minor = device.Minor, Access = permissions,
                });
            }
        }

        return (devices, rules);
    }

    // ---- resources ----------------------------------------------------------------------------------------------

    /// <summary>UpdateContainerResources' translation: the same checks and mapping as at create time.</summary>
    public static SpecResources TranslateResources(LinuxContainerResources resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var result = new SpecResources();
        Resources(resources, result, new SpecProcess());
        return result;
    }

    private static void Resources(LinuxContainerResources? r, SpecResources resources, SpecProcess process)
    {
        if (r is null)
        {
            return;
        }

        var cpu = new SpecCpu();
        if (r.CpuPeriod != 0)
        {
            if (r.CpuPeriod is < 1000 or > 1_000_000)
            {
                throw Invalid($"{Res}.cpu_period", $"{r.CpuPeriod} µs is outside 1000..1000000");
            }

            cpu.Period = (ulong)r.CpuPeriod;
        }

        if (r.CpuQuota != 0)
        {
            if (r.CpuQuota < -1)
            {
                throw Invalid($"{Res}.cpu_quota", $"{r.CpuQuota} is neither a quota nor -1 (unlimited)");
            }

            cpu.Quota = r.CpuQuota;
        }

        if (r.CpuShares != 0)
        {
            if (r.CpuShares is < 2 or > 262_144)
            {
                throw Invalid($"{Res}.cpu_shares", $"{r.CpuShares} is outside 2..262144");
            }

            cpu.Shares = (ulong)r.CpuShares;
        }

        if (!string.IsNullOrEmpty(r.CpusetCpus))
        {
            cpu.Cpus = CpuList(r.CpusetCpus, $"{Res}.cpuset_cpus");
        }

        if (!string.IsNullOrEmpty(r.CpusetMems))
        {
            cpu.Mems = CpuList(r.CpusetMems, $"{Res}.cpuset_mems");
        }

        if (cpu.Period is not null || cpu.Quota is not null || cpu.Shares is not null || cpu.Cpus is not null || cpu.Mems is not null)
        {
            resources.Cpu = cpu;
        }

        if (r.MemoryLimitInBytes < 0)
        {
            throw Invalid($"{Res}.memory_limit_in_bytes", $"{r.MemoryLimitInBytes} is negative");
        }

        if (r.MemorySwapLimitInBytes < -1)
        {
            throw Invalid($"{Res}.memory_swap_limit_in_bytes", $"{r.MemorySwapLimitInBytes} is neither a limit nor -1 (unlimited)");
        }

        if (r.MemoryLimitInBytes > 0 || r.MemorySwapLimitInBytes != 0)
        {
            var memory = new SpecMemory();
            if (r.MemoryLimitInBytes > 0)
            {
                memory.Limit = r.MemoryLimitInBytes;
                memory.Swap = r.MemoryLimitInBytes; // containerd: no swap unless a swap limit is given
            }

            if (r.MemorySwapLimitInBytes != 0)
            {
                if (r.MemorySwapLimitInBytes > 0 && r.MemorySwapLimitInBytes < r.MemoryLimitInBytes)
                {
                    throw Invalid($"{Res}.memory_swap_limit_in_bytes",
                        $"{r.MemorySwapLimitInBytes} is less than memory_limit_in_bytes {r.MemoryLimitInBytes} (it counts memory + swap)");
                }

                memory.Swap = r.MemorySwapLimitInBytes;
            }

            resources.Memory = memory;
        }

        var pageSizes = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < r.HugepageLimits.Count; i++)
        {
            var limit = r.HugepageLimits[i];
            if (!IsPageSize(limit.PageSize))
            {
                throw Invalid($"{Res}.hugepage_limits[{i}].page_size", $"'{limit.PageSize}' is not a page size such as 2MB or 1GB");
            }

            if (!pageSizes.Add(limit.PageSize))
            {
                throw Invalid($"{Res}.hugepage_limits[{i}].page_size", $"{limit.PageSize} is given twice");
            }

            resources.HugepageLimits.Add(new SpecHugepageLimit { PageSize = limit.PageSize, Limit = limit.Limit });
        }

        foreach (var (key, value) in r.Unified)
        {
            if (key.Length == 0 || key.Contains('/', StringComparison.Ordinal) || key.Contains("..", StringComparison.Ordinal) || !key.Contains('.', StringComparison.Ordinal))
            {
                throw Invalid($"{Res}.unified[\"{key}\"]", "is not a cgroup v2 interface file name");
            }

            resources.Unified[key] = value;
        }

        if (r.OomScoreAdj is < -1000 or > 1000)
        {
            throw Invalid($"{Res}.oom_score_adj", $"{r.OomScoreAdj} is outside -1000..1000");
        }

        process.OomScoreAdj = (int)r.OomScoreAdj;
    }

    private static string CpuList(string list, string field)
    {
        foreach (var part in list.Split(','))
        {
            var range = part.Trim().Split('-');
            if (range.Length is < 1 or > 2 || range.Any(n => n.Length == 0 || !n.All(char.IsAsciiDigit))
                || (range.Length == 2 && long.Parse(range[0], CultureInfo.InvariantCulture) > long.Parse(range[1], CultureInfo.InvariantCulture)))
            {
                throw Invalid(field, $"'{list}' is not a list such as 0-3,6");
            }
        }

        return list;
    }

    private static bool IsPageSize(string size)
    {
        var digits = size.TakeWhile(char.IsAsciiDigit).Count();
        return digits > 0 && size[digits..] is "B" or "KB" or "MB" or "GB" or "TB" or "PB";
    }

    // ---- security profiles --------------------------------------------------------------------------------------

    private JsonElement? Seccomp(LinuxContainerSecurityContext sc, PodRuntimeContext context)
    {
        if (sc.Seccomp is { } profile)
        {
            return profile.ProfileType switch
            {
                SecurityProfile.Types.ProfileType.RuntimeDefault => RuntimeDefault(context, $"{Sc}.seccomp"),
                SecurityProfile.Types.ProfileType.Unconfined => null,
                SecurityProfile.Types.ProfileType.Localhost => Localhost(profile.LocalhostRef, $"{Sc}.seccomp.localhost_ref"),
                _ => throw Invalid($"{Sc}.seccomp.profile_type", $"unknown type {(int)profile.ProfileType}"),
            };
        }

#pragma warning disable CS0612 // seccomp_profile_path is deprecated, and still sent by older kubelets
        var path = sc.SeccompProfilePath;
#pragma warning restore CS0612
        const string field = Sc + ".seccomp_profile_path";
        return path switch
        {
            null or "" or "unconfined" => null,
            "runtime/default" or "docker/default" => RuntimeDefault(context, field),
            _ when path.StartsWith("localhost/", StringComparison.Ordinal) => Localhost(path["localhost/".Length..], field),
            _ => throw Invalid(field, $"'{path}' is not runtime/default, unconfined or localhost/<path>"),
        };
    }

    private static JsonElement RuntimeDefault(PodRuntimeContext context, string field)
    {
        if (string.IsNullOrEmpty(context.DefaultSeccompProfile))
        {
            throw NacelleException.FailedPrecondition($"{field}: RuntimeDefault asked for, but no default seccomp profile is configured");
        }

        try
        {
            using var doc = JsonDocument.Parse(context.DefaultSeccompProfile);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw NacelleException.Internal($"{field}: the default seccomp profile is not valid JSON: {e.Message}", e);
        }
    }

    private JsonElement Localhost(string path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid(field, "a Localhost profile needs a path");
        }

        if (!path.StartsWith('/'))
        {
            throw Invalid(field, $"'{path}' must be an absolute path");
        }

        string text;
        try
        {
            text = host.ReadSeccompProfile(path);
        }
        catch (Exception e) when (e is not NacelleException)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: cannot read '{path}': {e.Message}", e);
        }

        try
        {
            _ = SeccompProfile.Parse(text);
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(field, $"'{path}' is not a JSON object");
            }

            return doc.RootElement.Clone();
        }
        catch (NacelleException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: '{path}': {e.Message}", e);
        }
        catch (JsonException e)
        {
            throw new NacelleException(ErrorKind.InvalidArgument, $"{field}: '{path}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>kubelet sends the default lists itself (and empty ones for ProcMount Unmasked, which proto3 cannot tell from
    /// unset); empty means runc's defaults here.</summary>
    private static List<string> Paths(IList<string> requested, IReadOnlyList<string> defaults, string field)
    {
        if (requested.Count == 0)
        {
            return [.. defaults];
        }

        for (var i = 0; i < requested.Count; i++)
        {
            if (!requested[i].StartsWith('/'))
            {
                throw Invalid($"{field}[{i}]", $"'{requested[i]}' must be absolute");
            }
        }

        return [.. requested];
    }

    private static void Notes(LinuxContainerSecurityContext sc, List<string> notes)
    {
        if (sc.Apparmor is { } apparmor && apparmor.ProfileType != SecurityProfile.Types.ProfileType.Unconfined)
        {
            var what = string.IsNullOrEmpty(apparmor.LocalhostRef) ? $"{apparmor.ProfileType}" : $"{apparmor.ProfileType} '{apparmor.LocalhostRef}'";
            notes.Add($"{Sc}.apparmor: {what} ignored: nacelle does not apply AppArmor profiles");
        }
        else
        {
#pragma warning disable CS0612 // apparmor_profile is deprecated, and still sent by older kubelets
            var legacy = sc.ApparmorProfile;
#pragma warning restore CS0612
            if (!string.IsNullOrEmpty(legacy) && legacy != "unconfined")
            {
                notes.Add($"{Sc}.apparmor_profile: '{legacy}' ignored: nacelle does not apply AppArmor profiles");
            }
        }

        if (sc.SelinuxOptions is { } selinux && (selinux.User.Length + selinux.Role.Length + selinux.Type.Length + selinux.Level.Length) > 0)
        {
            notes.Add($"{Sc}.selinux_options ignored: nacelle does not apply SELinux labels");
        }
    }

    // ---- log and stop signal ------------------------------------------------------------------------------------

    private static string? LogPath(ContainerConfig config, PodSandboxConfig sandbox, PodRuntimeContext context)
    {
        var directory = string.IsNullOrEmpty(context.LogDirectory) ? sandbox.LogDirectory : context.LogDirectory;
        if (string.IsNullOrEmpty(config.LogPath))
        {
            return null;
        }

        if (config.LogPath.StartsWith('/'))
        {
            throw Invalid("log_path", $"'{config.LogPath}' must be relative to the pod's log_directory");
        }

        if (config.LogPath.Split('/').Contains(".."))
        {
            throw Invalid("log_path", $"'{config.LogPath}' must not leave the pod's log_directory with '..'");
        }

        return string.IsNullOrEmpty(directory) ? null : Path.Join(directory, config.LogPath);
    }

    private static (int, string) StopSignal(ContainerConfig config, ImageConfig image)
    {
        if (config.StopSignal != Signal.RuntimeDefault)
        {
            return StopSignals.FromCri(config.StopSignal)
                ?? throw Invalid("stop_signal", $"unknown signal {(int)config.StopSignal}");
        }

        if (!string.IsNullOrEmpty(image.StopSignal))
        {
            return StopSignals.Parse(image.StopSignal)
                ?? throw Invalid("image config StopSignal", $"'{image.StopSignal}' is not a signal");
        }

        return (StopSignals.Default, "SIGTERM");
    }

    private static NacelleException Invalid(string field, string why) => NacelleException.InvalidArgument($"{field}: {why}");
}
