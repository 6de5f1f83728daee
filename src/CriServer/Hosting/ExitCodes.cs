namespace Nacelle.CriServer.Hosting;

/// <summary>
/// The exit statuses of the `nacelle` executable. docs/configuration.md lists them, and the systemd unit stops
/// restarting on the ones a restart cannot fix (RestartPreventExitStatus).
/// </summary>
internal static class ExitCodes
{
    /// <summary>A normal stop (SIGTERM/SIGINT) or a command that succeeded.</summary>
    public const int Success = 0;

    /// <summary>Failed while running: an unexpected error (a bug; the only case that prints a stack trace).</summary>
    public const int Failure = 1;

    /// <summary>A bad command line, or a configuration that is invalid, unreadable or names an address this host cannot use.</summary>
    public const int Configuration = 2;

    /// <summary>Something else holds what this daemon needs: its socket, the socket's lock, or a listen address.</summary>
    public const int InUse = 3;

    /// <summary>A state directory (root, state, the socket's directory) or the metadata database cannot be created, written or opened.</summary>
    public const int StateDirectory = 4;
}
