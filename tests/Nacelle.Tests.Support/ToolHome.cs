namespace Nacelle.Tests.Support;

/// <summary>
/// Where the build tools the tests run (go, npm) keep their own files: a directory of the tests' under /tmp, kept
/// between runs so later builds are quick, never the user's home. On a fresh machine `go build` would otherwise make
/// /root/.cache (its build cache) and /root/.config (Go 1.23's telemetry counters), and the CRI fuzzer, which runs at the
/// same time and counts every new entry in /root as something the daemon made, reports them.
/// </summary>
public static class ToolHome
{
    /// <summary>The directory: HOME for the tools, with their caches and configuration inside.</summary>
    public static string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "nacelle-test-toolhome");

    /// <summary>npm's cache (its --cache argument).</summary>
    public static string NpmCache => System.IO.Path.Combine(Path, "npm-cache");

    /// <summary>Where Debian installs Go libraries (golang-*-dev), laid out for GOPATH mode.</summary>
    public const string DebianGoPath = "/usr/share/gocode";

    /// <summary>
    /// The environment of the tests' go builds: HOME and the XDG directories here, and the build cache with them; GOPATH
    /// mode on Debian's libraries (every program the tests build is one file or package of its own, without a module),
    /// and no GOFLAGS of the caller's.
    /// </summary>
    public static Dictionary<string, string> GoEnvironment() => new()
    {
        ["HOME"] = Path,
        ["XDG_CACHE_HOME"] = System.IO.Path.Combine(Path, "cache"),
        ["XDG_CONFIG_HOME"] = System.IO.Path.Combine(Path, "config"),
        ["GOCACHE"] = System.IO.Path.Combine(Path, "cache", "go-build"),
        ["GO111MODULE"] = "off",
        ["GOPATH"] = DebianGoPath,
        ["GOFLAGS"] = string.Empty,
    };
}
