namespace Nacelle.Tests.Support;

/// <summary>Cleanup of a test's cgroup parent in every hierarchy (v1 controllers and the cgroup2 mount).</summary>
public static class TestCgroups
{
    /// <summary>Removes <paramref name="parent"/> and its direct children (empty by then) wherever they exist.</summary>
    public static void RemoveTree(string parent)
    {
        foreach (var hierarchy in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup/unified").Distinct())
        {
            var dir = hierarchy + parent;
            if (!Directory.Exists(dir))
            {
                continue;
            }

            foreach (var child in Directory.GetDirectories(dir))
            {
                Directory.Delete(child);
            }

            Directory.Delete(dir);
        }
    }
}
