using System.Text.Json;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>
/// What an exec in a running container takes from the container's spec (<see cref="SpawnPlanner.PlanExec"/>): the types
/// of the namespaces it joins, whether one is a user namespace, and the container's seccomp filter, compiled. A
/// container keeps this instead of its whole spec for as long as it exists (in a pod's monitor: for the pod's life),
/// and an exec no longer compiles the profile again or looks it up by its text. Made by
/// <see cref="SpawnPlanner.ExecTemplateFor"/>.
/// </summary>
public sealed class ExecTemplate
{
    private readonly Lock _gate = new();
    private JsonElement? _seccompSource;
    private SpawnSeccomp? _seccomp;
    private IReadOnlyList<string> _seccompWarnings = [];

    internal ExecTemplate(string[] namespaceTypes, bool inUserNamespace, JsonElement? seccompSource)
    {
        NamespaceTypes = namespaceTypes;
        InUserNamespace = inUserNamespace;
        _seccompSource = seccompSource;
    }

    /// <summary>The container's namespaces ("pid", "net", ...), in the spec's order: an exec joins each through the init.</summary>
    public IReadOnlyList<string> NamespaceTypes { get; }

    /// <summary>Whether the container runs in a user namespace (its own or one it joined).</summary>
    public bool InUserNamespace { get; }

    /// <summary>Whether the seccomp profile still waits for its first compilation (a template made lazily).</summary>
    public bool SeccompPending
    {
        get
        {
            lock (_gate)
            {
                return _seccompSource is not null;
            }
        }
    }

    /// <summary>
    /// The container's seccomp filter (null: none), compiled on the first call if the template was made lazily; the
    /// compiler's warnings go to <paramref name="adjustments"/> on every call, as each exec logs them. A profile that
    /// fails to compile throws every time (nothing is cached), as it did when each exec compiled it.
    /// </summary>
    internal SpawnSeccomp? Seccomp(List<string> adjustments)
    {
        lock (_gate)
        {
            if (_seccompSource is { } source)
            {
                var warnings = new List<string>();
                _seccomp = SpawnPlanner.CompileSeccomp(source, warnings);
                _seccompWarnings = warnings;
                _seccompSource = null;
            }

            adjustments.AddRange(_seccompWarnings);
            return _seccomp;
        }
    }
}
