using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Hosting;

namespace Nacelle.CriServer;

/// <summary>Entry point of the `nacelle` executable. Exit codes: 0 ok, 1 failed at run time, 2 bad command line or configuration.</summary>
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
                    return 0;
                case Command.PrintHelp:
                    Console.Out.WriteLine(CommandLine.Usage);
                    return 0;
                case Command.PrintDefaultConfig:
                    Console.Out.Write(ConfigRenderer.ToToml(new NacelleConfig()));
                    return 0;
                case Command.CheckConfig check:
                    var checkedConfig = ConfigLoader.Load(check.Sources);
                    Console.Out.WriteLine($"configuration is valid ({string.Join(", ", checkedConfig.Files.DefaultIfEmpty("embedded defaults"))})");
                    return 0;
                case Command.RunDaemon run:
                    return await Daemon.RunAsync(ConfigLoader.Load(run.Sources)).ConfigureAwait(false);
                default:
                    throw new UsageException("unknown command");
            }
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"nacelle: {e.Message}");
            Console.Error.WriteLine(CommandLine.Usage);
            return 2;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"nacelle: invalid configuration: {e.Message}");
            return 2;
        }
        catch (DaemonStartException e)
        {
            Console.Error.WriteLine($"nacelle: cannot start: {e.Message}");
            return 1;
        }
    }
}
