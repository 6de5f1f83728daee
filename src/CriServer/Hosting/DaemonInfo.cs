using System.Reflection;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.CriServer.Configuration;

namespace Nacelle.CriServer.Hosting;

/// <summary>Facts about this daemon process: version, the configuration in force (the start's, then each applied reload's), cgroup layout.</summary>
internal sealed class DaemonInfo(ConfigReloader configuration, CgroupLayout cgroups)
{
    /// <summary>The build's version: "0.1.0+&lt;git commit&gt;" (MSBuild Version plus SourceRevisionId).</summary>
    public static string Version { get; } =
        typeof(DaemonInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public NacelleConfig Config => configuration.Current.Config;

    public LoadedConfig Loaded => configuration.Current;

    /// <summary>When a reload (SIGHUP) was last applied; null before the first.</summary>
    public DateTimeOffset? ReloadedAt => configuration.ReloadedAt;

    public CgroupLayout Cgroups => cgroups;

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;
}
