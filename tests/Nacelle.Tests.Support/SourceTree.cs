namespace Nacelle.Tests.Support;

/// <summary>The checkout the tests belong to: scripts, deploy files and the chart are read (and run) from there.</summary>
public static class SourceTree
{
    /// <summary>The directory holding Cri.sln, above the test binaries or, when they are built elsewhere, above this file.</summary>
    public static string Root { get; } = Find();

    /// <summary>A path below <see cref="Root"/>.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Find([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? string.Empty })
        {
            for (var dir = start.Length > 0 ? new DirectoryInfo(start) : null; dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Cri.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException($"no Cri.sln above {AppContext.BaseDirectory} or {sourceFile}");
    }
}
