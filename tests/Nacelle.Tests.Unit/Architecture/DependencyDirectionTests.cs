using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Xml.Linq;

namespace Nacelle.Tests.Unit.Architecture;

/// <summary>
/// Dependencies point one way and the process boundary is the project boundary: the project references of src/*
/// stay within the allowed graph, and the built nacelle-monitor (with every nacelle assembly it pulls in) references
/// none of the daemon's pods, images, storage, SQLite or gRPC.
/// </summary>
public sealed class DependencyDirectionTests
{
    /// <summary>Every project under src/ and the projects it may reference (the CRI contract is api/cri).</summary>
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        ["CriServer"] = ["Sandbox", "ImageService", "ContainerCore", "Storage", "Common", "Cri.Api"],
        ["Sandbox"] = ["ImageService", "ContainerCore", "Storage", "Common"],
        ["ImageService"] = ["ContainerCore", "Storage", "Common"],
        ["Monitor"] = ["ContainerCore", "Common"],
        ["ContainerCore"] = ["Common"],
        ["Storage"] = ["Common"],
        ["Common"] = [],
    };

    /// <summary>What must never reach nacelle-monitor, directly or through another assembly.</summary>
    private static readonly string[] ForbiddenInMonitor =
        ["Nacelle.Sandbox", "Nacelle.ImageService", "Nacelle.Storage", "Nacelle.Cri.Api", "nacelle", "Microsoft.Data.Sqlite", "SQLitePCLRaw", "Grpc", "Google.Protobuf", "Microsoft.AspNetCore"];

    [Fact]
    public void Project_references_of_src_follow_the_allowed_graph()
    {
        var projects = Directory.GetFiles(Path.Combine(RepositoryRoot(), "src"), "Nacelle.*.csproj", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetFileNameWithoutExtension(p)["Nacelle.".Length..], p => p, StringComparer.Ordinal);
        Assert.Equal(Allowed.Keys.Order(StringComparer.Ordinal), projects.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, path) in projects)
        {
            var references = ProjectReferences(path);
            var forbidden = references.Except(Allowed[name]).ToList();
            Assert.True(forbidden.Count == 0, $"{name} references {string.Join(", ", forbidden)}; it may reference only {string.Join(", ", Allowed[name])}");
        }
    }

    [Fact]
    public void The_monitors_projects_take_no_sqlite_grpc_or_aspnet_packages()
    {
        var root = RepositoryRoot();
        foreach (var name in new[] { "Monitor", "ContainerCore", "Common" })
        {
            var project = XDocument.Load(Path.Combine(root, "src", name, $"Nacelle.{name}.csproj"));
            var packages = project.Descendants("PackageReference").Concat(project.Descendants("FrameworkReference"))
                .Select(e => (string?)e.Attribute("Include") ?? "").ToList();
            Assert.DoesNotContain(packages, p => ForbiddenInMonitor.Any(f => p.StartsWith(f, StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void The_built_monitor_references_none_of_the_daemons_assemblies_even_indirectly()
    {
        var closure = NacelleClosure("nacelle-monitor");
        Assert.Contains("Nacelle.ContainerCore", closure);
        Assert.Contains("Nacelle.Common", closure);
        foreach (var name in closure)
        {
            Assert.False(ForbiddenInMonitor.Any(f => name == f || name.StartsWith(f + ".", StringComparison.Ordinal)),
                $"nacelle-monitor's assemblies reference {name}");
        }
    }

    [Theory]
    [InlineData("Nacelle.Sandbox")]
    [InlineData("Nacelle.ImageService")]
    [InlineData("Nacelle.ContainerCore")]
    [InlineData("nacelle-monitor")]
    public void The_domain_knows_nothing_of_grpc(string assembly)
    {
        // CriServer maps CRI messages to domain requests (ContainerRequestMapping, PodSandboxMapping); nothing below it
        // sees a protobuf type.
        var closure = NacelleClosure(assembly);
        Assert.DoesNotContain(closure, n => n is "Nacelle.Cri.Api" or "Google.Protobuf" || n.StartsWith("Grpc.", StringComparison.Ordinal));
    }

    [Fact]
    public void The_closure_walk_sees_what_the_daemon_references()
    {
        // The same walk over the daemon finds the pods, the database and SQLite: the check above can fail.
        var closure = NacelleClosure("nacelle");
        Assert.Contains("Nacelle.Sandbox", closure);
        Assert.Contains("Nacelle.Storage", closure);
        Assert.Contains("Microsoft.Data.Sqlite", closure);
        Assert.Contains("Nacelle.Cri.Api", closure);
        Assert.Contains("Google.Protobuf", closure);
    }

    private static List<string> ProjectReferences(string csproj) =>
        XDocument.Load(csproj).Descendants("ProjectReference")
            .Select(e => Path.GetFileNameWithoutExtension(((string?)e.Attribute("Include") ?? "").Replace('\\', '/')))
            .Select(n => n.StartsWith("Nacelle.", StringComparison.Ordinal) ? n["Nacelle.".Length..] : n)
            .ToList();

    /// <summary>The names of the assemblies <paramref name="assembly"/> references, following every nacelle assembly
    /// (read from the test's output directory, where the referenced projects are built) to its own references.</summary>
    private static HashSet<string> NacelleClosure(string assembly)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<string>([assembly]);
        while (pending.TryDequeue(out var name))
        {
            var file = Path.Combine(AppContext.BaseDirectory, name + ".dll");
            Assert.True(File.Exists(file), $"{file} is not built beside the tests");
            using var pe = new PEReader(File.OpenRead(file));
            var reader = pe.GetMetadataReader();
            foreach (var handle in reader.AssemblyReferences)
            {
                var reference = reader.GetString(reader.GetAssemblyReference(handle).Name);
                if (seen.Add(reference) && reference.StartsWith("Nacelle.", StringComparison.Ordinal))
                {
                    pending.Enqueue(reference);
                }
            }
        }

        return seen;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cri.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Cri.sln above {AppContext.BaseDirectory}");
    }
}
