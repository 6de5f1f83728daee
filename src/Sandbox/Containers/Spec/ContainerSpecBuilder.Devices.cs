using Nacelle.ContainerCore.Spec;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's devices: the default device nodes and cgroup rules, the requested host devices, every host device for a privileged container.</summary>
public sealed partial class ContainerSpecBuilder
{
    private (List<SpecDevice> Devices, List<SpecDeviceRule> Rules) Devices(IReadOnlyList<DeviceRequest> requestedDevices, bool privileged)
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

        for (var i = 0; i < requestedDevices.Count; i++)
        {
            var at = $"devices[{i}]";
            var request = requestedDevices[i];
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
}
