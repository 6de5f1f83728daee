using Nacelle.Common;
using Nacelle.CriServer.Services.Pods;
using Nacelle.Sandbox.Store;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Pods;

/// <summary>
/// RunPodSandbox's userns_options, mapped and validated before anything is acquired: POD with kubelet's one mapping
/// per id kind is kept; what kubelet never sends is refused with InvalidArgument naming the field (critest's negative
/// user-namespace specs are among these).
/// </summary>
public sealed class PodUserNamespaceTests
{
    private const string Field = "config.linux.security_context.namespace_options.userns_options";

    private static IDMapping Map(uint container, uint host, uint length) => new() { ContainerId = container, HostId = host, Length = length };

    private static RunPodSandboxRequest Request(UserNamespace userns, NamespaceMode network = NamespaceMode.Pod) => new()
    {
        Config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "p", Namespace = "n", Uid = "u" },
            Linux = new LinuxPodSandboxConfig
            {
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = network, Pid = NamespaceMode.Container, UsernsOptions = userns },
                },
            },
        },
    };

    private static UserNamespace Pod(IDMapping[] uids, IDMapping[]? gids = null)
    {
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(uids);
        userns.Gids.Add(gids ?? uids);
        return userns;
    }

    private static void Refused(RunPodSandboxRequest request, string field, string why)
    {
        var error = Assert.Throws<NacelleException>(() => PodSandboxMapping.ToRequest(request).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith(field + ":", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kubelets_pod_mode_is_kept_with_its_mappings()
    {
        var request = PodSandboxMapping.ToRequest(Request(Pod([Map(0, 65536, 65536)], [Map(0, 131072, 65536)])));
        request.Validate();
        var user = request.NamespaceOptions.OwnUserNamespace;
        Assert.NotNull(user);
        Assert.Equal([new IdMapping(0, 65536, 65536)], user.Uids);
        Assert.Equal([new IdMapping(0, 131072, 65536)], user.Gids);
        Assert.Equal((65536u, 131072u), user.HostRoot());

        var node = PodSandboxMapping.ToRequest(Request(new UserNamespace { Mode = NamespaceMode.Node }));
        node.Validate();
        Assert.Null(node.NamespaceOptions.OwnUserNamespace);
    }

    [Fact]
    public void Mappings_kubelet_never_sends_are_refused_naming_the_field()
    {
        var withMappings = new UserNamespace { Mode = NamespaceMode.Node };
        withMappings.Uids.Add(Map(0, 65536, 65536));
        Refused(Request(withMappings), $"{Field}.uids", "NODE");
        Refused(Request(Pod([Map(0, 65536, 65536), Map(100, 70000, 10)])), $"{Field}.uids[1]", "overlap");
        Refused(Request(Pod([Map(0, 65536, 65536), Map(10, 65536 + 100, 10)])), $"{Field}.uids[1]", "overlap");
        Refused(Request(Pod([Map(0, 1000, 100000), Map(0, 2000, 100000)])), $"{Field}.uids[1]", "overlap");
        Refused(Request(Pod([Map(0, 65536, 65536), Map(65536, 200000, 10)])), $"{Field}.uids", "nacelle takes one");
        Refused(Request(Pod([Map(0, 4294967000, 65536)])), $"{Field}.uids[0]", "past the id space");
        Refused(Request(Pod([Map(0, 65536, 0)])), $"{Field}.uids[0].length", "at least 1");
        Refused(Request(Pod([Map(1, 1000, 100000)])), $"{Field}.uids[0].container_id", "must be 0");
        Refused(Request(Pod([Map(0, 0, 65536)])), $"{Field}.uids[0].host_id", "node's root");
        Refused(Request(Pod([Map(0, 65536, 65536)], [])), $"{Field}.gids", "needs a mapping");
        Refused(Request(new UserNamespace { Mode = NamespaceMode.Container }), $"{Field}.mode", "CONTAINER");
        Refused(Request(new UserNamespace { Mode = NamespaceMode.Target }), $"{Field}.mode", "TARGET");
        Refused(Request(Pod([Map(0, 65536, 65536)]), NamespaceMode.Node), "config.linux.security_context.namespace_options.network",
            "user namespace");
    }

    [Fact]
    public void The_user_namespace_survives_the_store_column()
    {
        var user = UserNamespaceOption.Pod([new IdMapping(0, 65536, 65536)], [new IdMapping(0, 131072, 1)]);
        Assert.Equal(user, UserNamespaceOption.FromColumn(UserNamespaceOption.ToColumn(user)));
        Assert.Equal("", UserNamespaceOption.ToColumn(null));
        Assert.Null(UserNamespaceOption.FromColumn(""));
    }
}
