namespace Nacelle.Common.PodMonitor;

/// <summary>
/// An external OCI runtime (runc, crun, runsc, kata-runtime) configured as a RuntimeClass handler: the daemon sends it
/// with a container's create, the monitor runs that container through it, and the container's state keeps it so a
/// restarted monitor drives the container with the same runtime. Invoked as
/// <c>&lt;Path&gt; --root &lt;Root&gt; [Args...] &lt;command&gt; ...</c>.
/// </summary>
/// <param name="Name">The handler's name (RunPodSandboxRequest.runtime_handler), for messages.</param>
/// <param name="Path">The runtime's executable, an absolute path.</param>
/// <param name="Root">The runtime's state directory (its --root), an absolute path.</param>
/// <param name="Args">Global options put before every command (e.g. "--systemd-cgroup" is not one nacelle supports).</param>
public sealed record ExternalRuntime(string Name, string Path, string Root, IReadOnlyList<string> Args);
