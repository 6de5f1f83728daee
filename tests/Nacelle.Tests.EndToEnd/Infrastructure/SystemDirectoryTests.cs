namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>
/// The xunit collection of the tests that write to the host's system directories or watch them: the Debian package test
/// installs nacelle (/etc/nacelle, /var/lib/nacelle, ...), and the CRI fuzzer reports any new entry there as written by
/// the daemon it fuzzes. Tests of one collection never run at the same time (CI saw the fuzzer report the package's
/// /etc/nacelle/config.toml).
/// </summary>
internal static class SystemDirectoryTests
{
    public const string Collection = "system directories";
}
