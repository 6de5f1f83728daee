namespace Nacelle.Sandbox.Streams;

/// <summary>
/// ExecSync's output as the daemon reads it from the process's pipes: stdout and stderr kept apart, together at most
/// <paramref name="limit"/> bytes (what one response message may carry). Going over sets <see cref="Overflowed"/>
/// and cancels <paramref name="stop"/>, which ends the exec (its process is killed): the answer is then an error,
/// never output cut short in silence.
/// </summary>
internal sealed class ExecOutputCapture(long limit, CancellationTokenSource stop)
{
    private long _total;

    public MemoryStream Stdout { get; } = new();

    public MemoryStream Stderr { get; } = new();

    public long Limit => limit;

    /// <summary>True once the output went over <see cref="Limit"/>.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>Bytes read of each stream, those past the limit included (what the process wrote before it was stopped).</summary>
    public long StdoutRead { get; private set; }

    public long StderrRead { get; private set; }

    /// <summary>Reads <paramref name="from"/> to its end into <paramref name="into"/> (<see cref="Stdout"/> or <see cref="Stderr"/>).</summary>
    public async Task ReadAsync(Stream from, MemoryStream into, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return;
            }

            if (ReferenceEquals(into, Stdout))
            {
                StdoutRead += read;
            }
            else
            {
                StderrRead += read;
            }

            if (Interlocked.Add(ref _total, read) > limit)
            {
                Overflowed = true;
                await stop.CancelAsync().ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                return;
            }

            into.Write(buffer, 0, read);
        }
    }
}
