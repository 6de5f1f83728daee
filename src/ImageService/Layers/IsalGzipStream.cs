using Nacelle.ContainerCore.Interop;

namespace Nacelle.ImageService.Layers;

/// <summary>
/// A read-only stream of the decompressed bytes of a gzip stream (one or more members), decoded by ISA-L's igzip,
/// which checks each member's CRC-32 and size as zlib does. Corrupt or truncated input throws
/// <see cref="InvalidDataException"/>, as <see cref="System.IO.Compression.GZipStream"/> would; bytes after the last
/// member that do not start another one are ignored, as GZipStream ignores them. Disposing it disposes the
/// compressed stream.
/// </summary>
internal sealed class IsalGzipStream(Stream compressed) : ReadOnlyStream
{
    private readonly IsalCalls.GzipInflater _inflater = new(256 * 1024);
    private bool _inputEnded;
    private bool _finished;
    private bool _started;


    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            if (TryInflate(buffer, out var produced))
            {
                return produced;
            }

            Fill(compressed.Read(_inflater.InputBuffer));
        }
    }


    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (TryInflate(buffer.Span, out var produced))
            {
                return produced;
            }

            Fill(await compressed.ReadAsync(_inflater.InputMemory, cancellationToken).ConfigureAwait(false));
        }
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inflater.Dispose();
            compressed.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Decodes into <paramref name="buffer"/>; false when more input must be read first. 0 bytes: the end.</summary>
    private bool TryInflate(Span<byte> buffer, out int produced)
    {
        produced = 0;
        if (buffer.IsEmpty)
        {
            return true;
        }

        while (!_finished)
        {
            if (_inflater.MemberFinished)
            {
                // A member ended (CRC and size checked). Another may follow, as in `cat a.gz b.gz`.
                if (_inflater.PendingInput == 0)
                {
                    if (!_inputEnded)
                    {
                        return false;
                    }

                    _finished = true;
                    break;
                }

                if (_inflater.NextInputByte != 0x1F)
                {
                    _finished = true;
                    break;
                }

                _inflater.StartNextMember();
            }

            if (_inflater.PendingInput == 0)
            {
                if (!_inputEnded)
                {
                    return false;
                }

                if (!_started)
                {
                    _finished = true; // no bytes at all: an empty stream, as GZipStream reads it
                    break;
                }

                throw new InvalidDataException("unexpected end of the gzip stream");
            }

            var pending = _inflater.PendingInput;
            produced = _inflater.Inflate(buffer);
            _started = true;
            if (produced > 0)
            {
                return true;
            }

            if (_inflater.PendingInput == pending && !_inflater.MemberFinished)
            {
                throw new InvalidDataException("the gzip stream is corrupt: the decoder made no progress (a preset dictionary?)");
            }
        }

        return true;
    }

    private void Fill(int read)
    {
        _inputEnded = read == 0;
        _inflater.SetInput(read);
    }
}
