using Nacelle.ContainerCore.Cgroups;
using Nacelle.CriServer.Hosting;
using Nacelle.Sandbox.Network;

namespace Nacelle.CriServer.Services;

/// <summary>One readiness condition as CRI reports it.</summary>
internal sealed record Readiness(bool Ready, string Reason, string Message)
{
    public static Readiness Yes { get; } = new(true, string.Empty, string.Empty);
}

/// <summary>
/// Answers "can this runtime take pods?" from real checks each time Status asks, and "is pod networking ready?"
/// from the CNI client's latest view of the conf dir and plugin directories.
/// </summary>
internal sealed class RuntimeReadiness(DaemonInfo daemon, CniNetwork network)
{
    public Readiness Runtime()
    {
        foreach (var (what, directory) in new[] { ("root", daemon.Config.Root), ("state", daemon.Config.State) })
        {
            if (!IsWritableDirectory(directory, out var why))
            {
                return new Readiness(false, "StateDirectoryUnusable", $"{what} directory {directory}: {why}");
            }
        }

        if (daemon.Cgroups.Mode == CgroupMode.None)
        {
            return new Readiness(false, "NoCgroups", "no cgroup filesystem is mounted on this node");
        }

        return Readiness.Yes;
    }

    /// <summary>NetworkReady: true with what the network is, or false with NetworkPluginNotReady and why.</summary>
    public Readiness Network() => FromCni(network.Status());

    public static Readiness FromCni(CniNetworkStatus status) => status.Ready
        ? new Readiness(true, string.Empty, status.Message)
        : new Readiness(false, string.IsNullOrEmpty(status.Reason) ? CniNetworkStatus.NotReadyReason : status.Reason, status.Message);

    private static bool IsWritableDirectory(string directory, out string why)
    {
        try
        {
            using (File.Create(Path.Combine(directory, $".ready-{Environment.ProcessId}"), 1, FileOptions.DeleteOnClose))
            {
            }

            why = string.Empty;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = e.Message;
            return false;
        }
    }
}
