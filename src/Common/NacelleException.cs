namespace Nacelle.Common;

/// <summary>
/// The one exception type domain code throws for failures a caller should see. The message is shown
/// to the caller as is, so it names what was wrong (the id, the path, the key) and why.
/// </summary>
public class NacelleException : Exception
{
    public NacelleException(ErrorKind kind, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
    }

    public ErrorKind Kind { get; }

    public static NacelleException InvalidArgument(string message) => new(ErrorKind.InvalidArgument, message);
    public static NacelleException NotFound(string message) => new(ErrorKind.NotFound, message);
    public static NacelleException AlreadyExists(string message) => new(ErrorKind.AlreadyExists, message);
    public static NacelleException FailedPrecondition(string message) => new(ErrorKind.FailedPrecondition, message);
    public static NacelleException Unavailable(string message, Exception? inner = null) => new(ErrorKind.Unavailable, message, inner);
    public static NacelleException Unauthenticated(string message) => new(ErrorKind.Unauthenticated, message);
    public static NacelleException PermissionDenied(string message) => new(ErrorKind.PermissionDenied, message);
    public static NacelleException Unimplemented(string message) => new(ErrorKind.Unimplemented, message);
    public static NacelleException ResourceExhausted(string message) => new(ErrorKind.ResourceExhausted, message);
    public static NacelleException Internal(string message, Exception? inner = null) => new(ErrorKind.Internal, message, inner);
}
