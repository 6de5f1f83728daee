namespace Nacelle.ContainerCore.Spawn;

/// <summary>
/// The numbers of the spawn helper's protocol, mirrored from <c>native/spawn_protocol.h</c> (the protocol's
/// definition; a unit test compares every value). See that header for the message and report layouts.
/// </summary>
public static class SpawnProtocol
{
    public const uint Magic = 0x5753504e;
    public const uint Version = 1;
    public const int HeaderSize = 12;
    public const int RecordHeaderSize = 8;

    public const ushort RecCloneFlags = 1;
    public const ushort RecJoinNs = 2;
    public const ushort RecUidMap = 4;
    public const ushort RecGidMap = 5;
    public const ushort RecOomScoreAdj = 6;
    public const ushort RecCgroupThread = 7;
    public const ushort RecCgroupInto = 8;
    public const ushort RecRootfs = 10;
    public const ushort RecRootPropagation = 11;
    public const ushort RecMount = 12;
    public const ushort RecDevice = 13;
    public const ushort RecSymlink = 14;
    public const ushort RecMaskedPath = 15;
    public const ushort RecReadonlyPath = 16;
    public const ushort RecRootReadonly = 17;
    public const ushort RecRootfsDetached = 18;
    public const ushort RecHostname = 20;
    public const ushort RecDomainname = 21;
    public const ushort RecSysctl = 22;
    public const ushort RecRlimit = 23;
    public const ushort RecUser = 30;
    public const ushort RecUmask = 31;
    public const ushort RecNoNewPrivs = 32;
    public const ushort RecCaps = 33;
    public const ushort RecSeccomp = 34;
    public const ushort RecCwd = 40;
    public const ushort RecArg = 41;
    public const ushort RecEnv = 42;
    public const ushort RecPark = 43;
    public const ushort RecNewSession = 44;
    public const ushort RecTerminal = 45;
    public const ushort RecApparmor = 60;
    public const ushort RecSelinuxLabel = 61;
    public const ushort RecConnect = 50;

    public const uint MountFs = 0;
    public const uint MountBind = 1;
    public const uint MountBindRecursiveReadonly = 2;
    public const uint MountKindMask = 0xff;
    public const uint MountDetached = 0x100;
    public const uint MountIdmap = 0x200;
    public const uint MountIdmapRecursive = 0x400;
    public const uint MountHostFallback = 0x800;
    public const uint CreateDir = 0;
    public const uint CreateFile = 1;

    public const uint ReportPid = 1;
    public const uint ReportReady = 2;
    public const uint ReportError = 3;
    public const uint ReportConsole = 4;
    public const uint ReportSocket = 5;
    public const int ReportMessageSize = 256;
    public const int ReportSize = 276;

    public const byte StartByte = (byte)'S';

    /// <summary>Stage numbers, in execution order, with the names the helper shows in ps.</summary>
    public static IReadOnlyList<(int Number, string Name)> Stages { get; } =
    [
        (1, "parse"), (2, "cgroup"), (3, "oom-score"), (4, "join-ns"), (5, "clone"), (6, "id-maps"), (7, "mounts"),
        (8, "devices"), (9, "pivot-root"), (10, "hostname"), (11, "sysctl"), (12, "mask-paths"), (13, "rlimits"),
        (14, "user"), (15, "no-new-privs"), (16, "caps"), (17, "seccomp"), (18, "cwd"), (19, "lookup"),
        (20, "close-fds"), (21, "wait-start"), (22, "exec"), (23, "console"), (24, "lsm"), (30, "copy-mounts"), (40, "connect"),
    ];

    public const int StageClone = 5;
    public const int StageSysctl = 11;
    public const int StageLookup = 19;
    public const int StageCwd = 18;
    public const int StageExec = 22;
    public const int StageConsole = 23;
    public const int StageLsm = 24;
    public const int StageConnect = 40;

    /// <summary>The name of a stage number ("stage 99" when unknown).</summary>
    public static string StageName(int stage)
    {
        foreach (var (number, name) in Stages)
        {
            if (number == stage)
            {
                return name;
            }
        }

        return $"stage {stage}";
    }
}
