using Nacelle.Common;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>The spawn helper reported a failure: at which stage, with which errno, doing what.</summary>
public sealed class SpawnException(ErrorKind kind, int stage, int errno, string detail, string message)
    : NacelleException(kind, message)
{
    public int Stage { get; } = stage;

    public string StageName => SpawnProtocol.StageName(Stage);

    public int Errno { get; } = errno;

    /// <summary>What the helper was doing ("cannot mount /proc").</summary>
    public string Detail { get; } = detail;
}
