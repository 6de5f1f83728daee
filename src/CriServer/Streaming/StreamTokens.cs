using System.Buffers.Text;
using System.Security.Cryptography;
using Nacelle.Common;

namespace Nacelle.CriServer.Streaming;

/// <summary>
/// The requests behind handed-out stream URLs. A token is 256 random bits (base64url), used at most once, and
/// forgotten when unused for <c>lifetime</c>; an unknown, used or expired token finds nothing. At most
/// <c>capacity</c> are outstanding, so a caller handing out URLs nobody uses cannot grow memory.
/// </summary>
internal sealed class StreamTokens(TimeSpan lifetime, int capacity, TimeProvider time)
{
    private const int TokenBytes = 32;

    private readonly Dictionary<string, (PendingStream Request, long Expires)> _pending = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Keeps <paramref name="request"/> under a new token and returns the token.</summary>
    public string Add(PendingStream request)
    {
        Span<byte> random = stackalloc byte[TokenBytes];
        RandomNumberGenerator.Fill(random);
        var token = Base64Url.EncodeToString(random);
        var now = time.GetTimestamp();
        lock (_lock)
        {
            RemoveExpired(now);
            if (_pending.Count >= capacity)
            {
                throw new NacelleException(ErrorKind.ResourceExhausted,
                    $"{capacity} stream URLs are handed out and not yet used; try again when some are used or expired");
            }

            _pending[token] = (request, now + (long)(lifetime.TotalSeconds * time.TimestampFrequency));
        }

        return token;
    }

    /// <summary>The request behind <paramref name="token"/>, removed so it cannot be used again; null when the token is
    /// unknown, used or expired.</summary>
    public PendingStream? Take(string token)
    {
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (!_pending.Remove(token, out var entry))
            {
                return null;
            }

            return entry.Expires > now ? entry.Request : null;
        }
    }

    private void RemoveExpired(long now)
    {
        foreach (var (token, entry) in _pending)
        {
            if (entry.Expires <= now)
            {
                _pending.Remove(token);
            }
        }
    }
}
