using System.Reflection;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.CriServer.Configuration;

namespace Nacelle.CriServer.Hosting;

/// <summary>Facts about this daemon process fixed at start: version, effective config, cgroup layout.</summary>
internal sealed class DaemonInfo(LoadedConfig loaded, CgroupLayout cgroups)
{
    /// <summary>The build's version: "0.1.0+&lt;git commit&gt;" (MSBuild Version plus SourceRevisionId).</summary>
    public static string Version { get; } =
        typeof(DaemonInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public NacelleConfig Config => loaded.Config;

    public LoadedConfig Loaded => loaded;

    public CgroupLayout Cgroups => cgroups;

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;
}
