namespace Nacelle.Tests.Support;

/// <summary>
/// portmap's shared nat chains (CNI-HOSTPORT-DNAT, -SETMARK, -MASQ) are used by every test on the machine that maps a
/// host port, and the kernel and end-to-end assemblies run at the same time. A test that removed the chains while
/// another was adding its rule made that other test fail (its rule, or the jump to its chain, gone). So: every test
/// scope that may map host ports holds a shared lock for its lifetime (<see cref="Use"/>); the chains are removed only
/// by a scope that, at its end, can take the lock exclusively (no other scope is running), only when no mapping is left
/// in them, and only when the tests created them (a marker written by the scope that found them missing), never
/// the host's own.
/// </summary>
public sealed class PortmapChains : IDisposable
{
    private const string LockPath = "/run/nacelle-tests-portmap.lock";
    private const string CreatedByTests = "/run/nacelle-tests-portmap.created";
    /// <summary>The chains every portmap user shares (per-pod chains are CNI-DN-* and CNI-SN-*).</summary>
    public static IReadOnlyList<string> Shared { get; } = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"];

    private readonly FileStream _shared;

    private PortmapChains(FileStream shared) => _shared = shared;

    /// <summary>Takes the shared lock (waiting while a scope is removing the chains) for the caller's lifetime.</summary>
    public static PortmapChains Use()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                // On Unix any share mode but None takes flock(LOCK_SH|LOCK_NB); None takes LOCK_EX.
                var shared = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
                if (TestProcesses.Run("iptables", "-t", "nat", "-S", Shared[0]).Exit != 0)
                {
                    File.WriteAllText(CreatedByTests, "portmap's chains did not exist before the tests: the last test scope removes them\n");
                }

                return new PortmapChains(shared);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }

    public void Dispose()
    {
        _shared.Dispose();
        FileStream exclusive;
        try
        {
            exclusive = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return; // another scope runs: the last one cleans up
        }

        using (exclusive)
        {
            if (File.Exists(CreatedByTests) && RemoveIfEmpty())
            {
                File.Delete(CreatedByTests);
            }
        }
    }

    /// <summary>The chains and the jumps to them, when no mapping is left in them; true when they are gone.</summary>
    private static bool RemoveIfEmpty()
    {
        var rules = TestProcesses.Run("iptables-save", "-t", "nat").Stdout.Split('\n');
        if (rules.Any(r => r.StartsWith("-A CNI-HOSTPORT-DNAT ", StringComparison.Ordinal)))
        {
            return false; // a mapping (someone's) still lives there
        }

        foreach (var rule in rules.Where(r => r.StartsWith("-A ", StringComparison.Ordinal) && Shared.Any(c => r.Contains("-j " + c, StringComparison.Ordinal))))
        {
            // the rule text is shell-quoted (comments): let the shell split it
            TestProcesses.Run("/bin/sh", "-c", "iptables -t nat -D " + rule[3..]);
        }

        foreach (var chain in Shared)
        {
            TestProcesses.Run("iptables", "-t", "nat", "-F", chain);
        }

        foreach (var chain in Shared)
        {
            TestProcesses.Run("iptables", "-t", "nat", "-X", chain);
        }

        return true;
    }
}
