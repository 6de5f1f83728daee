namespace Nacelle.Tests.Support;

/// <summary>Cleanup of a test's cgroup parent in every hierarchy (v1 controllers and the cgroup2 mount).</summary>
public static class TestCgroups
{
    /// <summary>Removes <paramref name="parent"/> and every cgroup below it (empty of processes by then), deepest first,
    /// wherever they exist.</summary>
    public static void RemoveTree(string parent)
    {
        foreach (var hierarchy in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Distinct())
        {
            var dir = hierarchy + parent;
            if (Directory.Exists(dir))
            {
                RemoveDepthFirst(dir);
            }
        }
    }

    /// <summary>Whether <paramref name="parent"/> exists in any hierarchy.</summary>
    public static bool Exists(string parent) =>
        Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Any(hierarchy => Directory.Exists(hierarchy + parent));

    /// <summary>Removes what is empty of <paramref name="parent"/> and below it, deepest first; a cgroup that still has
    /// processes (and its ancestors) stays.</summary>
    public static void RemoveEmpty(string parent)
    {
        foreach (var hierarchy in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Distinct())
        {
            var dir = hierarchy + parent;
            if (Directory.Exists(dir))
            {
                try
                {
                    RemoveDepthFirst(dir);
                }
                catch (IOException)
                {
                    // busy: in use by processes that are not the tests' (or not gone yet)
                }
            }
        }
    }

    private static void RemoveDepthFirst(string dir)
    {
        foreach (var child in Directory.GetDirectories(dir))
        {
            RemoveDepthFirst(child);
        }

        Directory.Delete(dir);
    }

    /// <summary>SIGKILLs every process in <paramref name="parent"/> and the cgroups below it, in every hierarchy (the test
    /// made the parent: only its own processes are in it), and waits a little for them to go.</summary>
    public static void KillTree(string parent)
    {
        for (var round = 0; round < 50; round++)
        {
            var pids = Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Distinct()
                .Select(hierarchy => hierarchy + parent)
                .Where(Directory.Exists)
                .SelectMany(dir => Directory.EnumerateFiles(dir, "cgroup.procs", SearchOption.AllDirectories))
                .SelectMany(File.ReadAllLines)
                .Where(line => line.Length > 0)
                .Select(int.Parse)
                .Distinct()
                .ToList();
            if (pids.Count == 0)
            {
                return;
            }

            foreach (var pid in pids)
            {
                Nacelle.ContainerCore.Interop.Signals.Send(pid, Nacelle.ContainerCore.Interop.Signals.SIGKILL);
            }

            Thread.Sleep(100);
        }
    }
}
