using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Mounts;

namespace Nacelle.Sandbox.Handlers;

/// <summary>How a handler runs a pod's containers.</summary>
public enum RuntimeHandlerKind
{
    /// <summary>nacelle's own namespace/cgroup core (ContainerCore), driven by the pod's monitor.</summary>
    BuiltIn,

    /// <summary>An external OCI runtime (runc, crun, ...) the pod's monitor runs each container through.</summary>
    Oci,
}

/// <summary>The optional CRI features a handler really provides on this node (Status' runtime_handlers).</summary>
/// <param name="UserNamespacesMissing">Why user namespaces are off (null when on): the refusal of a pod that asks.</param>
public sealed record HandlerFeatures(bool UserNamespaces, bool RecursiveReadOnlyMounts, string? UserNamespacesMissing = null);

/// <summary>A RuntimeClass handler: its name (as kubelet sends runtime_handler), kind and features.</summary>
/// <param name="External">The external runtime of an <see cref="RuntimeHandlerKind.Oci"/> handler.</param>
/// <param name="Unavailable">Why the handler cannot run pods on this node now (its runtime is missing), or null.</param>
public sealed record RuntimeHandler(string Name, RuntimeHandlerKind Kind, HandlerFeatures Features, ExternalRuntime? External = null,
    string? Unavailable = null);

/// <summary>
/// The runtime handlers this node serves, in the order Status lists them: "" (the default) and "nacelle", both the
/// built-in core, then the configured ones, each with the features it was found to have. RunPodSandbox resolves a
/// pod's handler here.
/// </summary>
public sealed class RuntimeHandlers(IReadOnlyList<RuntimeHandler> handlers)
{
    /// <summary>The default handler and its alias "nacelle", both the built-in core with <paramref name="kernel"/>'s features.</summary>
    public static RuntimeHandlers BuiltIn(KernelFeatures kernel) => new(BuiltInHandlers(kernel));

    /// <summary>The built-in handlers followed by <paramref name="configured"/>.</summary>
    public static RuntimeHandlers With(KernelFeatures kernel, IEnumerable<RuntimeHandler> configured) =>
        new([.. BuiltInHandlers(kernel), .. configured]);

    /// <summary>"" and "nacelle" as built-in handlers with <paramref name="kernel"/>'s features (also for configured
    /// aliases of the built-in core).</summary>
    public static HandlerFeatures BuiltInFeatures(KernelFeatures kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return new HandlerFeatures(kernel.UserNamespaces, kernel.RecursiveReadOnlyMounts, kernel.UserNamespacesMissing);
    }

    private static RuntimeHandler[] BuiltInHandlers(KernelFeatures kernel)
    {
        var features = BuiltInFeatures(kernel);
        return [new RuntimeHandler("", RuntimeHandlerKind.BuiltIn, features), new RuntimeHandler("nacelle", RuntimeHandlerKind.BuiltIn, features)];
    }

    public IReadOnlyList<RuntimeHandler> All { get; } = handlers;

    /// <summary>The handler named <paramref name="name"/>; NotFound naming it (and the known ones) otherwise.</summary>
    public RuntimeHandler Resolve(string name) =>
        All.FirstOrDefault(h => string.Equals(h.Name, name ?? "", StringComparison.Ordinal))
        ?? throw NacelleException.NotFound(
            $"runtime_handler '{name}' is not served by nacelle (known: {string.Join(", ", All.Select(h => $"\"{h.Name}\""))})");
}
