using Grpc.Core;
using Nacelle.Common;

namespace Nacelle.CriServer.Grpc;

/// <summary>
/// The one place where failures become gRPC statuses. Domain code throws <see cref="NacelleException"/>
/// with an <see cref="ErrorKind"/>; anything else is a bug and becomes Internal.
/// </summary>
internal static class ErrorMapping
{
    public static StatusCode ToStatusCode(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.Unauthenticated => StatusCode.Unauthenticated,
        ErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        ErrorKind.Cancelled => StatusCode.Cancelled,
        ErrorKind.Unimplemented => StatusCode.Unimplemented,
        ErrorKind.Internal => StatusCode.Internal,
        _ => StatusCode.Unknown,
    };

    /// <summary>The longest status detail sent. Messages name what was wrong and often quote it; a caller's megabyte id
    /// quoted whole would make trailers no client accepts (.NET's limit is 64 KiB, and kubelet's would turn the refusal into
    /// a transport error).</summary>
    public const int MaxDetailLength = 4096;

    /// <summary>The status a failed call answers with. <paramref name="rpc"/> is the short rpc name.</summary>
    public static Status ToStatus(Exception exception, string rpc, bool callCancelled)
    {
        var status = Map(exception, rpc, callCancelled);
        return status.Detail.Length <= MaxDetailLength
            ? status
            : new Status(status.StatusCode, $"{status.Detail[..MaxDetailLength]}... ({status.Detail.Length} characters, cut)", status.DebugException);
    }

    private static Status Map(Exception exception, string rpc, bool callCancelled) => exception switch
    {
        // The generated service base answers Unimplemented with no detail for rpcs we do not override.
        RpcException { StatusCode: StatusCode.Unimplemented } e when string.IsNullOrEmpty(e.Status.Detail) =>
            new Status(StatusCode.Unimplemented, $"{rpc} is not implemented by nacelle"),
        RpcException e => e.Status,
        NacelleException e => new Status(ToStatusCode(e.Kind), e.Message),
        OperationCanceledException when callCancelled => new Status(StatusCode.Cancelled, $"{rpc} was cancelled by the caller"),
        OperationCanceledException => new Status(StatusCode.Unavailable, $"{rpc} was interrupted: nacelle is shutting down"),
        _ => new Status(StatusCode.Internal, $"{rpc} failed: internal error: {exception.Message}"),
    };

    /// <summary>Internal and Unknown are nacelle's fault; the rest describe the request or the world.</summary>
    public static bool IsServerFault(StatusCode code) => code is StatusCode.Internal or StatusCode.Unknown or StatusCode.DataLoss;
}
