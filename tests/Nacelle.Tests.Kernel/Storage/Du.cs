using System.Globalization;
using Nacelle.ImageService.Snapshots;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Kernel.Storage;

/// <summary>GNU du as the reference for disk usage: <c>du --one-file-system</c>, bytes of allocated blocks and inodes.</summary>
internal static class Du
{
    /// <summary>The total of <paramref name="paths"/> in one du run (a hard link shared between them counts once).</summary>
    public static UsageNumbers Of(params string[] paths)
    {
        if (paths.Length == 0)
        {
            return default;
        }

        return new UsageNumbers(Total(["-B1", .. paths]), Total(["--inodes", .. paths]));
    }

    private static long Total(string[] arguments)
    {
        var (exit, stdout, stderr) = TestProcesses.Run("/usr/bin/du", ["--one-file-system", "-s", "-c", .. arguments]);
        Assert.True(exit == 0, $"du failed: {stderr}");
        var last = stdout.TrimEnd('\n').Split('\n')[^1];
        Assert.EndsWith("\ttotal", last);
        return long.Parse(last.Split('\t')[0], CultureInfo.InvariantCulture);
    }
}
