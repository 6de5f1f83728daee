using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nacelle.Monitor.Exits;

/// <summary>
/// How one container or exec process ended, as the pod monitor observed it (recorded durably before it is reported).
/// </summary>
public sealed record ExitRecord
{
    /// <summary>The container id or exec id.</summary>
    public required string Id { get; init; }

    /// <summary>The process id (in the monitor's pid namespace) that exited.</summary>
    public int Pid { get; init; }

    /// <summary>The exit status: the code of a normal exit, 128 + signal for a signalled process (as CRI reports it).</summary>
    public int ExitCode { get; init; }

    /// <summary>The signal that killed the process, or null when it exited normally.</summary>
    public int? Signal { get; init; }

    /// <summary>True when the kernel OOM killer killed the process (CRI reason <c>OOMKilled</c>).</summary>
    public bool OomKilled { get; init; }

    /// <summary>When the process was started.</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When the monitor reaped it.</summary>
    public DateTimeOffset ExitedAt { get; init; }
}

/// <summary>Source-generated (reflection-free, Native AOT) JSON metadata for <see cref="ExitRecord"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(ExitRecord))]
internal sealed partial class ExitRecordJsonContext : JsonSerializerContext
{
    private static readonly Nacelle.Common.JsonMetadata.Releasable<ExitRecordJsonContext> Uncached =
        new(static () => new(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, RespectNullableAnnotations = true }));

    /// <summary>The context to use: <see cref="Default"/>, or with <see cref="Nacelle.Common.JsonMetadata.Cached"/> off one
    /// kept until <see cref="Nacelle.Common.JsonMetadata.Release"/>, whose metadata then goes with it (its options are the
    /// attribute's above; a unit test compares the two).</summary>
    public static ExitRecordJsonContext Current => Nacelle.Common.JsonMetadata.Cached ? Default : Uncached.Get();
}
