using Microsoft.Extensions.Logging;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// The daemon's log level, changed by a configuration reload without rebuilding the logging pipeline: the one filter
/// of the logger factory reads it on every call. The framework's own categories (Microsoft.*, Grpc.*) only log
/// warnings unless the level is debug or trace; the generic host's copy of a start failure and ASP.NET Core's request
/// diagnostics only when debugging (Main prints the one line; see <see cref="Allows"/>).
/// </summary>
internal sealed class LogLevelSwitch(LogLevel level)
{
    private volatile int _level = (int)level;

    public LogLevel Level
    {
        get => (LogLevel)_level;
        set => _level = (int)value;
    }

    /// <summary>log_level's value ("trace", "debug", "info", "warn", "error") as a <see cref="LogLevel"/>.</summary>
    public static LogLevel Parse(string value) => value switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        _ => LogLevel.Information,
    };

    public bool Allows(string? provider, string? category, LogLevel level)
    {
        var threshold = Level;
        var debugging = threshold <= LogLevel.Debug;
        // ASP.NET Core's request diagnostics: while this category logs at any level, every request gets an Activity and a
        // logging scope even with tracing off and nothing to write (it checks Critical). Its lines (request start and
        // end, at Information) only matter when debugging.
        if (category is not null && (category.StartsWith("Microsoft.Extensions.Hosting.Internal.Host", StringComparison.Ordinal)
                                     || category == "Microsoft.AspNetCore.Hosting.Diagnostics"))
        {
            return debugging && level >= threshold;
        }

        if (category is not null && (category.StartsWith("Microsoft", StringComparison.Ordinal) || category.StartsWith("Grpc", StringComparison.Ordinal)))
        {
            return level >= (debugging ? threshold : LogLevel.Warning);
        }

        return level >= threshold;
    }
}
