namespace Nacelle.Common;

/// <summary>
/// What went wrong, in terms a caller can act on. Domain code throws <see cref="NacelleException"/>
/// with one of these; the daemon maps each kind to a gRPC status code in exactly one place
/// (CriServer's ErrorMapping), so no domain project needs to know about gRPC.
/// </summary>
public enum ErrorKind
{
    /// <summary>The request itself is malformed or names something impossible.</summary>
    InvalidArgument,
    /// <summary>The pod, container, image or other object named does not exist.</summary>
    NotFound,
    /// <summary>An object with that name or id exists already.</summary>
    AlreadyExists,
    /// <summary>The object exists but is in a state where the operation cannot run (e.g. start a stopped container).</summary>
    FailedPrecondition,
    /// <summary>A dependency (registry, CNI plugin, monitor) cannot be reached right now; retrying may help.</summary>
    Unavailable,
    /// <summary>Credentials were missing or not accepted (e.g. by an image registry).</summary>
    Unauthenticated,
    /// <summary>The credentials were accepted but do not allow this (e.g. pulling a private repository).</summary>
    PermissionDenied,
    /// <summary>A limit was hit (disk, pids, quota).</summary>
    ResourceExhausted,
    /// <summary>The operation did not finish within its time bound.</summary>
    DeadlineExceeded,
    /// <summary>The caller gave up or the daemon is shutting down.</summary>
    Cancelled,
    /// <summary>nacelle does not implement this (yet, or on this platform).</summary>
    Unimplemented,
    /// <summary>A bug or an unexpected failure inside nacelle.</summary>
    Internal,
}
