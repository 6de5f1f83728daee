using Microsoft.Extensions.Logging;
using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class LogLevelSwitchTests
{
    private const string RequestDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>ASP.NET Core makes an Activity and a logging scope for every request while its request diagnostics
    /// category is enabled at any level (it asks for Critical): off unless debugging.</summary>
    [Theory]
    [InlineData(LogLevel.Information, false)]
    [InlineData(LogLevel.Warning, false)]
    [InlineData(LogLevel.Debug, true)]
    public void AspNetCoresRequestDiagnosticsLogOnlyWhenDebugging(LogLevel level, bool critical)
    {
        var levels = new LogLevelSwitch(level);
        Assert.Equal(critical, levels.Allows(null, RequestDiagnostics, LogLevel.Critical));
        Assert.Equal(level == LogLevel.Debug, levels.Allows(null, RequestDiagnostics, LogLevel.Debug));
        // Kestrel's own warnings still pass.
        Assert.True(levels.Allows(null, "Microsoft.AspNetCore.Server.Kestrel", LogLevel.Warning));
        Assert.True(levels.Allows(null, "Nacelle.CriServer.Grpc.CriInterceptor", LogLevel.Warning));
    }
}
