using System.Globalization;
using System.Xml.Linq;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Unit.Monitor;

/// <summary>
/// The GC settings built into nacelle-monitor (its csproj's <c>--runtimeopt:</c> IlcArgs) are in a form the Native AOT
/// runtime accepts. It reads them as hexadecimal digits only: "0x40000" is rejected and the setting silently ignored
/// (measured: the monitor's gen0 budget then stayed at its default of megabytes).
/// </summary>
public sealed class MonitorRuntimeOptionsTests
{
    private static Dictionary<string, string> RuntimeOptions()
    {
        var project = XDocument.Load(SourceTree.PathOf("src", "Monitor", "Nacelle.Monitor.csproj"));
        const string prefix = "--runtimeopt:";
        return project.Descendants("IlcArg")
            .Select(item => (string?)item.Attribute("Include") ?? string.Empty)
            .Where(arg => arg.StartsWith(prefix, StringComparison.Ordinal))
            .Select(arg => arg[prefix.Length..].Split('=', 2))
            .ToDictionary(pair => pair[0], pair => pair.Length == 2 ? pair[1] : string.Empty, StringComparer.Ordinal);
    }

    [Fact]
    public void GcSettingsAreBareHexadecimal()
    {
        var options = RuntimeOptions();
        Assert.Contains("GCgen0size", options.Keys);
        Assert.Contains("GCRegionRange", options.Keys);
        Assert.All(options, option => Assert.Matches("^[0-9A-Fa-f]{1,16}$", option.Value));
    }

    [Fact]
    public void GcSettingsAreWithinWhatTheGcTakes()
    {
        var options = RuntimeOptions();
        long Value(string name) => long.Parse(options[name], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        // The GC ignores a gen0 budget under 64 KiB and falls back to its default.
        Assert.All(options.Keys.Where(k => k.StartsWith("GCgen0", StringComparison.Ordinal)), name => Assert.True(Value(name) >= 0x10000, name));
        // The heap's whole address space: it must hold the largest request line (4 MiB), its decoding and the regions
        // the GC keeps per generation many times over.
        Assert.True(Value("GCRegionRange") >= 64L << 20, "GCRegionRange");
    }
}
