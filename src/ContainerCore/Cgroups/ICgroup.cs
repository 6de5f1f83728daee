using Microsoft.Win32.SafeHandles;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>CPU accounting: nanoseconds of CPU time and CFS throttling.</summary>
public sealed record CgroupCpuStats(
    ulong UsageNanoseconds, ulong UserNanoseconds, ulong SystemNanoseconds,
    ulong Periods, ulong ThrottledPeriods, ulong ThrottledNanoseconds);

/// <summary>Memory accounting in bytes. WorkingSet = usage - inactive file pages (what kubelet evicts on).</summary>
/// <param name="Limit">Null when unlimited.</param>
public sealed record CgroupMemoryStats(ulong Usage, ulong WorkingSet, ulong Rss, ulong Cache, ulong Swap, ulong? Limit);

/// <param name="Max">Null when unlimited.</param>
public sealed record CgroupPidsStats(ulong Current, ulong? Max);

/// <summary>OOM counters.</summary>
/// <param name="OomEvents">v2 memory.events "oom" (the limit was hit and reclaim failed); null on v1, which has no such counter.</param>
/// <param name="OomKills">Processes the OOM killer killed in this cgroup (v1 memory.oom_control oom_kill, v2 memory.events oom_kill).</param>
/// <param name="UnderOom">v1 memory.oom_control under_oom (tasks waiting because the OOM killer is disabled); always false on v2.</param>
public sealed record CgroupOomStatus(ulong? OomEvents, ulong OomKills, bool UnderOom);

/// <summary>A snapshot of a cgroup's accounting; a part is null when its controller is not available.</summary>
public sealed record CgroupStats(CgroupCpuStats? Cpu, CgroupMemoryStats? Memory, CgroupPidsStats? Pids, CgroupOomStatus? Oom);

/// <summary>
/// What container and pod stats report of a cgroup: total cpu time, memory as in <see cref="CgroupStats"/>, and the
/// process count when asked for. A part is null when its controller is not available.
/// </summary>
public sealed record CgroupUsage(ulong? CpuNanoseconds, CgroupMemoryStats? Memory, ulong? ProcessCount);

/// <summary>
/// One container or pod cgroup, created by <see cref="CgroupManager"/>. Every method maps kernel failures to
/// <see cref="Nacelle.Common.NacelleException"/> (InvalidArgument for bad resources, NotFound for a vanished
/// process or cgroup, Internal with the file and errno otherwise).
/// </summary>
public interface ICgroup
{
    /// <summary>The path inside the hierarchy, e.g. "/kubepods/besteffort/pod123/abc".</summary>
    string Path { get; }

    /// <summary>True for a cgroup v2 (unified) cgroup.</summary>
    bool IsUnified { get; }

    /// <summary>Every cgroup.procs file a process is written into to join this cgroup (v1: one per hierarchy,
    /// plus the hybrid cgroup2 twin), as the spawn helper does before it clones the container process.</summary>
    IReadOnlyList<string> ProcsFiles { get; }

    /// <summary>
    /// How the spawn helper joins this cgroup without moving a thread group (which waits for an RCU grace period in the
    /// kernel, see native/spawn.c): the cgroup v1 "tasks" files it writes "0" into (one per hierarchy; none under v2).
    /// </summary>
    IReadOnlyList<string> ThreadFiles { get; }

    /// <summary>The cgroup2 directory the helper clones the container process into (v2: this cgroup; v1: the hybrid
    /// cgroup2 twin, null without one).</summary>
    string? CloneIntoDirectory { get; }

    /// <summary>
    /// Validates, then writes the limits (v2: enabling the needed controllers in the parents first; device rules are
    /// compiled to an eBPF program that replaces the one attached before). Fields left null are not touched.
    /// </summary>
    void Apply(CgroupResources resources);

    /// <summary>Moves a process (all its threads) into the cgroup (v1: into every hierarchy).</summary>
    void AddProcess(int pid);

    /// <summary>The pids in cgroup.procs (v1: of the first hierarchy holding this cgroup, all hierarchies agree).</summary>
    IReadOnlyList<int> Processes();

    /// <summary>Freezes every task and waits, bounded, until the kernel reports the cgroup frozen.</summary>
    Task FreezeAsync(CancellationToken cancellationToken = default);

    /// <summary>Thaws the cgroup and waits, bounded, until it is running again.</summary>
    Task ThawAsync(CancellationToken cancellationToken = default);

    /// <summary>SIGKILLs every process (v2 cgroup.kill; v1 freeze, kill each pid, thaw) and waits, bounded, until none is left.</summary>
    Task KillAsync(CancellationToken cancellationToken = default);

    /// <summary>Every number this interface knows of the cgroup (cpu detail and throttling, memory, pids with their limit, OOM counters).</summary>
    CgroupStats Stats();

    /// <summary>
    /// Only what CRI container and pod stats report (<see cref="CgroupUsage"/>), from as few files as give it: kubelet
    /// asks for every container's and every pod's stats every few seconds.
    /// </summary>
    CgroupUsage Usage(bool withProcessCount);

    CgroupOomStatus OomKills();

    /// <summary>rmdir (v1: in every hierarchy), retrying with backoff while processes drain. Removing a removed cgroup succeeds.</summary>
    Task RemoveAsync(CancellationToken cancellationToken = default);

    /// <summary>The paths of the direct child cgroups (v1: in any hierarchy), e.g. the containers of a pod cgroup; empty
    /// when the cgroup does not exist.</summary>
    IReadOnlyList<string> ChildPaths();

    /// <summary>
    /// An O_PATH|O_DIRECTORY fd of the cgroup2 directory, for clone3(CLONE_INTO_CGROUP) so the child starts in its cgroup.
    /// v1 has no such thing: there the spawn helper must write the child's pid (<see cref="AddProcess"/>) before it
    /// releases the child to execve; in hybrid mode this returns the cgroup2 twin directory (which only groups processes).
    /// </summary>
    SafeFileHandle OpenDirectory();
}
