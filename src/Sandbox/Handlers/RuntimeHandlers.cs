using Nacelle.Common;
using Nacelle.ContainerCore.Mounts;

namespace Nacelle.Sandbox.Handlers;

/// <summary>How a handler runs a pod's containers. Only the built-in core exists today; an external OCI runtime under
/// the pod's monitor is the next kind.</summary>
public enum RuntimeHandlerKind
{
    /// <summary>nacelle's own namespace/cgroup core (ContainerCore), driven by the pod's monitor.</summary>
    BuiltIn,
}

/// <summary>The optional CRI features a handler really provides on this node (Status' runtime_handlers).</summary>
/// <param name="UserNamespacesMissing">Why user namespaces are off (null when on): the refusal of a pod that asks.</param>
public sealed record HandlerFeatures(bool UserNamespaces, bool RecursiveReadOnlyMounts, string? UserNamespacesMissing = null);

/// <summary>A RuntimeClass handler: its name (as kubelet sends runtime_handler), kind and features.</summary>
public sealed record RuntimeHandler(string Name, RuntimeHandlerKind Kind, HandlerFeatures Features);

/// <summary>
/// The runtime handlers this node serves, in the order Status lists them: "" (the default) and "nacelle", both the
/// built-in core, with the features the kernel was found to have. RunPodSandbox resolves a pod's handler here.
/// </summary>
public sealed class RuntimeHandlers(IReadOnlyList<RuntimeHandler> handlers)
{
    /// <summary>The default handler and its alias "nacelle", both the built-in core with <paramref name="kernel"/>'s features.</summary>
    public static RuntimeHandlers BuiltIn(KernelFeatures kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var features = new HandlerFeatures(kernel.UserNamespaces, kernel.RecursiveReadOnlyMounts, kernel.UserNamespacesMissing);
        return new RuntimeHandlers([new RuntimeHandler("", RuntimeHandlerKind.BuiltIn, features), new RuntimeHandler("nacelle", RuntimeHandlerKind.BuiltIn, features)]);
    }

    public IReadOnlyList<RuntimeHandler> All { get; } = handlers;

    /// <summary>The handler named <paramref name="name"/>; NotFound naming it (and the known ones) otherwise.</summary>
    public RuntimeHandler Resolve(string name) =>
        All.FirstOrDefault(h => string.Equals(h.Name, name ?? "", StringComparison.Ordinal))
        ?? throw NacelleException.NotFound(
            $"runtime_handler '{name}' is not served by nacelle (known: {string.Join(", ", All.Select(h => $"\"{h.Name}\""))})");
}
