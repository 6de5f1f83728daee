using Nacelle.CriServer.Configuration;

namespace Nacelle.CriServer.Hosting;

/// <summary>What the command line asks for.</summary>
internal abstract record Command
{
    public sealed record RunDaemon(ConfigSources Sources) : Command;
    public sealed record PrintDefaultConfig : Command;
    public sealed record CheckConfig(ConfigSources Sources) : Command;
    public sealed record PrintVersion : Command;
    public sealed record PrintHelp : Command;
}

/// <summary>Thrown for a malformed command line; Main prints the message and the usage and exits 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// nacelle [--config FILE] [--config-dir DIR] [--socket PATH] [--root DIR] [--state DIR] [--log-level LEVEL] [--default-network NAME]
/// nacelle config default | nacelle config check [FILE] | nacelle version | nacelle help
/// </summary>
internal static class CommandLine
{
    public const string Usage = """
        Usage:
          nacelle [flags]                 run the CRI daemon
          nacelle config default          print the default configuration, every key commented
          nacelle config check [FILE]     validate FILE (default /etc/nacelle/config.toml) and its config.d drop-ins
          nacelle version                 print the version

        Flags (they win over the configuration files):
          --config FILE       main configuration file (default /etc/nacelle/config.toml)
          --config-dir DIR    drop-in directory, *.toml applied in lexical order (default: config.d beside --config)
          --socket PATH       CRI unix socket (grpc.socket, default /run/nacelle/nacelle.sock)
          --root DIR          persistent state (root, default /var/lib/nacelle)
          --state DIR         volatile state (state, default /run/nacelle)
          --log-level LEVEL   trace, debug, info, warn or error (log_level)
          --default-network NAME
                              none or builtin: the pod network while no CNI configuration is installed
                              (cni.default_network, default none; scripts/run.sh passes builtin)
        """;

    // Flags that set a configuration key.
    private static readonly Dictionary<string, string> KeyFlags = new(StringComparer.Ordinal)
    {
        ["--socket"] = "grpc.socket",
        ["--root"] = "root",
        ["--state"] = "state",
        ["--log-level"] = "log_level",
        ["--default-network"] = "cni.default_network",
    };

    public static Command Parse(IReadOnlyList<string> args)
    {
        if (args.Count > 0 && !args[0].StartsWith('-'))
        {
            return args[0] switch
            {
                "version" when args.Count == 1 => new Command.PrintVersion(),
                "help" => new Command.PrintHelp(),
                "config" when args.Count >= 2 && args[1] == "default" && args.Count == 2 => new Command.PrintDefaultConfig(),
                "config" when args.Count >= 2 && args[1] == "check" => ParseCheck(args.Skip(2).ToList()),
                "config" => throw new UsageException("expected `nacelle config default` or `nacelle config check [FILE]`"),
                _ => throw new UsageException($"unknown command '{args[0]}'"),
            };
        }

        if (args.Count == 1 && args[0] is "--version")
        {
            return new Command.PrintVersion();
        }

        if (args.Count == 1 && args[0] is "--help" or "-h")
        {
            return new Command.PrintHelp();
        }

        return new Command.RunDaemon(ParseFlags(args, allowKeyFlags: true, configFile: null));
    }

    private static Command ParseCheck(List<string> rest)
    {
        string? file = null;
        if (rest.Count > 0 && !rest[0].StartsWith('-'))
        {
            file = rest[0];
            rest.RemoveAt(0);
        }

        return new Command.CheckConfig(ParseFlags(rest, allowKeyFlags: false, configFile: file));
    }

    private static ConfigSources ParseFlags(IReadOnlyList<string> args, bool allowKeyFlags, string? configFile)
    {
        var configPath = configFile ?? ConfigSources.DefaultConfigPath;
        var configExplicit = configFile is not null;
        string? dropIns = null;
        var overrides = new List<ConfigOverride>();

        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string flag;
            string? value = null;
            var equals = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                flag = arg[..equals];
                value = arg[(equals + 1)..];
            }
            else
            {
                flag = arg;
            }

            if (flag is not ("--config" or "--config-dir") && !(allowKeyFlags && KeyFlags.ContainsKey(flag)))
            {
                throw new UsageException($"unknown flag '{arg}'");
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"flag {flag} needs a value");
                }

                value = args[++i];
            }

            switch (flag)
            {
                case "--config" when configFile is null:
                    configPath = value;
                    configExplicit = true;
                    break;
                case "--config":
                    throw new UsageException("give the file either as an argument or with --config, not both");
                case "--config-dir":
                    dropIns = value;
                    break;
                default:
                    overrides.Add(new ConfigOverride(flag, KeyFlags[flag], value));
                    break;
            }
        }

        return new ConfigSources(configPath, configExplicit, dropIns ?? ConfigSources.DropInDirectoryFor(configPath), overrides);
    }
}
