using System.Globalization;
using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Sandbox.Store;

/// <summary>One line of a user namespace's id map (CRI <c>IDMapping</c>): container ids from
/// <paramref name="ContainerId"/> map to host ids from <paramref name="HostId"/>, <paramref name="Length"/> of them.</summary>
public sealed record IdMapping(uint ContainerId, uint HostId, uint Length)
{
    public SpecIdMapping ToSpec() => new() { ContainerId = ContainerId, HostId = HostId, Size = Length };
}

/// <summary>
/// A pod's or container's user namespace as CRI asks for it (<c>NamespaceOption.userns_options</c>): NODE (the node's,
/// kubelet's hostUsers: true) or POD with kubelet's uid and gid mappings (hostUsers: false). Compared by value.
/// </summary>
public sealed record UserNamespaceOption(PodNamespaceMode Mode, IReadOnlyList<IdMapping> Uids, IReadOnlyList<IdMapping> Gids)
{
    /// <summary>A pod of its own user namespace with these mappings.</summary>
    public static UserNamespaceOption Pod(IReadOnlyList<IdMapping> uids, IReadOnlyList<IdMapping> gids) => new(PodNamespaceMode.Pod, uids, gids);

    /// <summary>Whether this asks for a user namespace of the pod's own (POD).</summary>
    public bool IsPod => Mode == PodNamespaceMode.Pod;

    public List<SpecIdMapping> UidSpec() => [.. Uids.Select(m => m.ToSpec())];

    public List<SpecIdMapping> GidSpec() => [.. Gids.Select(m => m.ToSpec())];

    /// <summary>The host uid and gid of the container's root (container id 0).</summary>
    public (uint Uid, uint Gid) HostRoot() =>
        (IdMappings.HostIdOf(UidSpec(), 0) ?? throw NacelleException.Internal("the user namespace does not map uid 0"),
         IdMappings.HostIdOf(GidSpec(), 0) ?? throw NacelleException.Internal("the user namespace does not map gid 0"));

    public bool Equals(UserNamespaceOption? other) =>
        other is not null && Mode == other.Mode && Uids.SequenceEqual(other.Uids) && Gids.SequenceEqual(other.Gids);

    public override int GetHashCode() => HashCode.Combine(Mode, Uids.Count, Gids.Count, Uids.FirstOrDefault(), Gids.FirstOrDefault());

    /// <summary>
    /// Refuses (InvalidArgument, naming <paramref name="field"/>, the CRI path of userns_options) what kubelet never
    /// sends: a mode other than POD or NODE, NODE with mappings, POD without exactly one uid and one gid mapping that
    /// starts at container id 0, mappings that overlap, end past 2^32 or map the node's root (host id 0).
    /// </summary>
    public void Validate(string field)
    {
        switch (Mode)
        {
            case PodNamespaceMode.Node:
                if (Uids.Count > 0 || Gids.Count > 0)
                {
                    throw NacelleException.InvalidArgument(
                        $"{field}.{(Uids.Count > 0 ? "uids" : "gids")}: mode NODE is the node's user namespace and takes no mappings");
                }

                return;
            case PodNamespaceMode.Pod:
                ValidateMappings(Uids, $"{field}.uids");
                ValidateMappings(Gids, $"{field}.gids");
                return;
            default:
                throw NacelleException.InvalidArgument(
                    $"{field}.mode: {Mode.ToString().ToUpperInvariant()} is not supported: a pod's user namespace is its own (POD) or the node's (NODE)");
        }
    }

    private static void ValidateMappings(IReadOnlyList<IdMapping> mappings, string field)
    {
        if (mappings.Count == 0)
        {
            throw NacelleException.InvalidArgument($"{field}: mode POD needs a mapping");
        }

        IdMappings.Validate([.. mappings.Select(m => m.ToSpec())], field, "length");
        if (mappings.Count > 1)
        {
            throw NacelleException.InvalidArgument($"{field}: {mappings.Count} mappings; nacelle takes one, as kubelet sends it");
        }

        if (mappings[0].ContainerId != 0)
        {
            throw NacelleException.InvalidArgument($"{field}[0].container_id: {mappings[0].ContainerId}; must be 0 (the container's root must be mapped)");
        }

        if (mappings[0].HostId == 0)
        {
            throw NacelleException.InvalidArgument($"{field}[0].host_id: 0 would map the node's root into the pod");
        }
    }

    /// <summary>The store's text form: "" for none or NODE, else "uids=c:h:l,...;gids=c:h:l,...".</summary>
    public static string ToColumn(UserNamespaceOption? option) =>
        option is not { IsPod: true } ? "" : $"uids={Line(option.Uids)};gids={Line(option.Gids)}";

    public static UserNamespaceOption? FromColumn(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var parts = text.Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
        return Pod(Parse(parts.GetValueOrDefault("uids", "")), Parse(parts.GetValueOrDefault("gids", "")));
    }

    private static string Line(IReadOnlyList<IdMapping> mappings) =>
        string.Join(',', mappings.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.ContainerId}:{m.HostId}:{m.Length}")));

    private static List<IdMapping> Parse(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(item => item.Split(':')).Select(f =>
            new IdMapping(uint.Parse(f[0], CultureInfo.InvariantCulture), uint.Parse(f[1], CultureInfo.InvariantCulture), uint.Parse(f[2], CultureInfo.InvariantCulture)))];
}
