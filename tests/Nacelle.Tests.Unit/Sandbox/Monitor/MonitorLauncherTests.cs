using System.Text.RegularExpressions;
using Nacelle.Sandbox.Monitor;

namespace Nacelle.Tests.Unit.Sandbox.Monitor;

/// <summary>The runtime settings the launcher gives every monitor are in a form the Native AOT runtime accepts.</summary>
public sealed class MonitorLauncherTests
{
    [Fact]
    public void RuntimeSettingsAreDotnetVariablesWithBareHexadecimalValues()
    {
        // Native AOT reads DOTNET_ integer settings as hexadecimal digits only: "0x40000" is rejected and the setting
        // silently ignored (measured: the monitor's gen0 budget then stayed at its default).
        Assert.NotEmpty(MonitorLauncher.RuntimeSettings);
        Assert.All(MonitorLauncher.RuntimeSettings, setting => Assert.Matches(new Regex("^DOTNET_[A-Za-z0-9]+=[0-9A-Fa-f]{1,16}$"), setting));
        // The GC ignores a gen0 budget under 64 KiB and falls back to its default (megabytes).
        Assert.All(MonitorLauncher.RuntimeSettings.Where(s => s.StartsWith("DOTNET_GCgen0", StringComparison.Ordinal)),
            setting => Assert.True(Convert.ToInt64(setting[(setting.IndexOf('=', StringComparison.Ordinal) + 1)..], 16) >= 0x10000, setting));
    }
}
