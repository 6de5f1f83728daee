using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Hosting;

namespace Nacelle.CriServer;

/// <summary>Entry point of the `nacelle` executable. Exit codes: <see cref="ExitCodes"/> (listed in docs/configuration.md).</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            switch (CommandLine.Parse(args))
            {
                case Command.PrintVersion:
                    Console.Out.WriteLine($"nacelle {DaemonInfo.Version}");
                    return ExitCodes.Success;
                case Command.PrintHelp:
                    Console.Out.WriteLine(CommandLine.Usage);
                    return ExitCodes.Success;
                case Command.PrintDefaultConfig:
                    Console.Out.Write(ConfigRenderer.ToToml(new NacelleConfig()));
                    return ExitCodes.Success;
                case Command.CheckConfig check:
                    var checkedConfig = ConfigLoader.Load(check.Sources);
                    Console.Out.WriteLine($"configuration is valid ({string.Join(", ", checkedConfig.Files.DefaultIfEmpty("embedded defaults"))})");
                    return ExitCodes.Success;
                case Command.RunDaemon run:
                    return await Daemon.RunAsync(run.Sources, ConfigLoader.Load(run.Sources)).ConfigureAwait(false);
                default:
                    throw new UsageException("unknown command");
            }
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"nacelle: {e.Message}");
            Console.Error.WriteLine(CommandLine.Usage);
            return ExitCodes.Configuration;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"nacelle: invalid configuration: {e.Message}");
            return ExitCodes.Configuration;
        }
        catch (DaemonStartException e)
        {
            Console.Error.WriteLine($"nacelle: cannot start: {e.Message}");
            return e.ExitCode;
        }
    }
}
