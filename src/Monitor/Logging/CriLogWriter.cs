using Nacelle.Common;
using Nacelle.Monitor.Memory;

namespace Nacelle.Monitor.Logging;

/// <summary>
/// Writes one container's log file in the CRI format kubelet reads
/// (<c>&lt;RFC3339Nano UTC&gt; &lt;stdout|stderr&gt; &lt;P|F&gt; &lt;content&gt;\n</c>, one record per line).
/// </summary>
/// <remarks>
/// <para>Both streams of a container share one writer; records are formatted into one buffer (the records of one read
/// chunk together, see <see cref="BeginBatch"/>) and written with one positioned write under a lock, so records of the
/// two streams never interleave within a line. The buffers are the monitor's lent scratch memory
/// (<see cref="ScratchMemory"/>): an idle writer holds none.</para>
/// <para>The writer never throws from <see cref="Write"/>: the pumps feeding it must keep draining the container's
/// pipes whatever happens to the file. When the file cannot be opened (log directory gone) or a write fails
/// (disk full, I/O error) the record is dropped and counted in <see cref="DroppedBytes"/>/<see cref="DroppedRecords"/>,
/// the file is closed, and the next record opens it again. Whenever the writer opens a non-empty file that does not end
/// with a newline (a write that failed half way, or a monitor killed mid-write), it first writes a newline, so the torn
/// record never glues itself to the next one (kubelet skips or shows the torn line alone). Nothing but this writer
/// appends to the file (kubelet only renames it and then calls ReopenContainerLog, see <see cref="Reopen"/>), so the
/// writer keeps the end-of-file offset itself and writes each record with one positioned write.</para>
/// </remarks>
public sealed class CriLogWriter : IDisposable
{
    private static readonly byte[] StdoutTag = "stdout"u8.ToArray();
    private static readonly byte[] StderrTag = "stderr"u8.ToArray();

    // timestamp + " stdout F " + content + "\n"
    private const int HeaderSpace = CriTimestamp.MaxLength + 10 + 1;

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly UnixFileMode _mode;
    private ScratchLease? _batch;
    private int _batchLength;
    private int _batchRecords;
    private long _batchContent;
    private FileStream? _file;
    private long _offset;
    private bool _disposed;
    private long _droppedBytes;
    private long _droppedRecords;
    private long _writtenRecords;
    private Exception? _lastError;

    private CriLogWriter(string path, CriLogWriterOptions options)
    {
        if (options.MaxLineSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxLineSize must be at least 1, got {options.MaxLineSize}");
        }

        Path = path;
        MaxLineSize = options.MaxLineSize;
        _time = options.TimeProvider;
        _mode = options.FileMode;
    }

    /// <summary>The log file path (kubelet's <c>log_directory</c> joined with the container's <c>log_path</c>).</summary>
    public string Path { get; }

    /// <summary>The longest content of one record; pumps split longer lines at this size.</summary>
    public int MaxLineSize { get; }

    /// <summary>Content bytes dropped because the file could not be opened or written.</summary>
    public long DroppedBytes => Interlocked.Read(ref _droppedBytes);

    /// <summary>Records dropped because the file could not be opened or written.</summary>
    public long DroppedRecords => Interlocked.Read(ref _droppedRecords);

    /// <summary>Records written to the file.</summary>
    public long WrittenRecords => Interlocked.Read(ref _writtenRecords);

    /// <summary>The most recent open or write failure (null when none happened yet).</summary>
    public Exception? LastError
    {
        get
        {
            lock (_gate)
            {
                return _lastError;
            }
        }
    }

    /// <summary>
    /// Opens (creating with <see cref="CriLogWriterOptions.FileMode"/> if needed) the log file at <paramref name="path"/>
    /// for appending. The parent directory is not created: kubelet creates the pod's log directory, and a missing one
    /// fails here with <see cref="ErrorKind.FailedPrecondition"/> naming the directory.
    /// </summary>
    public static CriLogWriter Open(string path, CriLogWriterOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var writer = new CriLogWriter(path, options ?? new CriLogWriterOptions());
        lock (writer._gate)
        {
            writer.OpenFileLocked();
        }

        return writer;
    }

    /// <summary>
    /// Writes one record stamped with the current time. <paramref name="content"/> must not contain a newline and
    /// should be at most <see cref="MaxLineSize"/> bytes (longer content is written as one longer record; splitting is
    /// the pump's job). Never throws for file problems: a record that cannot be written is dropped and counted. Inside a
    /// <see cref="BeginBatch"/> the record waits for the batch's write.
    /// </summary>
    public void Write(CriLogStream stream, bool partial, ReadOnlySpan<byte> content) => Write(stream, partial, content, default);

    /// <summary>As <see cref="Write(CriLogStream, bool, ReadOnlySpan{byte})"/>, the content given in two pieces (the part of
    /// a line held from an earlier read, and the rest).</summary>
    public void Write(CriLogStream stream, bool partial, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (first.Contains((byte)'\n') || second.Contains((byte)'\n'))
        {
            throw new ArgumentException("a CRI log record cannot contain a newline", nameof(first));
        }

        lock (_gate)
        {
            var length = HeaderSpace + first.Length + second.Length;
            if (_batch is not { } batch)
            {
                // Alone: formatted in a lent buffer (or one of its own when it is longer) and written at once.
                using var lease = ScratchMemory.Batch.Rent();
                var buffer = length <= lease.Span.Length ? lease.Span : new byte[length];
                var size = Format(buffer, stream, partial, first, second);
                WriteOutLocked(buffer[..size], 1, first.Length + second.Length);
                return;
            }

            var room = batch.Span.Length - _batchLength;
            if (length > room && _batchLength > 0)
            {
                FlushLocked();
                room = batch.Span.Length;
            }

            if (length > room)
            {
                var own = new byte[length];
                WriteOutLocked(own.AsSpan(0, Format(own, stream, partial, first, second)), 1, first.Length + second.Length);
                return;
            }

            _batchLength += Format(batch.Span[_batchLength..], stream, partial, first, second);
            _batchRecords++;
            _batchContent += first.Length + second.Length;
        }
    }

    /// <summary>
    /// Collects the records written until the returned batch is disposed, and writes them with one positioned write
    /// (more when they do not fit <see cref="ScratchMemory.BatchSize"/>): a read of many short lines costs one system
    /// call, not one per line. A batch is synchronous work: no await inside it. It holds the writer's lock until it
    /// ends, so a pump of the other stream on another thread (the fd reactor outside the monitor runs continuations on the
    /// thread pool) waits for it instead of finding a batch open.
    /// </summary>
    public WriteBatch BeginBatch()
    {
        _gate.Enter();
        try
        {
            if (_batch is not null)
            {
                throw new InvalidOperationException("a batch is open already");
            }

            _batch = ScratchMemory.Batch.Rent();
            return new WriteBatch(this);
        }
        catch
        {
            _gate.Exit();
            throw;
        }
    }

    private void EndBatch()
    {
        try
        {
            if (_batch is { } batch)
            {
                FlushLocked();
                _batch = null;
                batch.Dispose();
            }
        }
        finally
        {
            _gate.Exit();
        }
    }

    private void FlushLocked()
    {
        if (_batchLength > 0)
        {
            WriteOutLocked(_batch!.Value.Span[.._batchLength], _batchRecords, _batchContent);
        }

        _batchLength = 0;
        _batchRecords = 0;
        _batchContent = 0;
    }

    /// <summary>timestamp, stream, tag, content and newline into <paramref name="buffer"/>; returns the length.</summary>
    private int Format(Span<byte> buffer, CriLogStream stream, bool partial, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        var position = CriTimestamp.FromDateTimeOffset(_time.GetUtcNow()).Format(buffer);
        buffer[position++] = (byte)' ';
        var tag = stream == CriLogStream.Stderr ? StderrTag : StdoutTag;
        tag.CopyTo(buffer[position..]);
        position += tag.Length;
        buffer[position++] = (byte)' ';
        buffer[position++] = partial ? (byte)'P' : (byte)'F';
        buffer[position++] = (byte)' ';
        first.CopyTo(buffer[position..]);
        position += first.Length;
        second.CopyTo(buffer[position..]);
        position += second.Length;
        buffer[position++] = (byte)'\n';
        return position;
    }

    /// <summary>Appends formatted records to the file; on failure they are dropped and counted, and the file is closed.</summary>
    private void WriteOutLocked(ReadOnlySpan<byte> records, int count, long contentBytes)
    {
        if (_disposed || !EnsureOpenLocked())
        {
            Drop(contentBytes, count);
            return;
        }

        try
        {
            RandomAccess.Write(_file!.SafeFileHandle, records, _offset);
            _offset += records.Length;
            _writtenRecords += count;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Possibly written in part: the next open terminates the torn record (see the remarks).
            _lastError = e;
            Drop(contentBytes, count);
            CloseLocked();
        }
    }

    /// <summary>An open batch (<see cref="BeginBatch"/>); disposing it writes what it collected.</summary>
    public readonly struct WriteBatch : IDisposable
    {
        private readonly CriLogWriter? _writer;

        internal WriteBatch(CriLogWriter writer) => _writer = writer;

        public void Dispose() => _writer?.EndBatch();
    }

    /// <summary>
    /// Closes the file and opens <see cref="Path"/> again, creating a new file (ReopenContainerLog: kubelet renamed the
    /// old file, which keeps everything written so far). Throws <see cref="NacelleException"/> when the new file cannot
    /// be opened; the writer then keeps dropping records and retries the open on every record.
    /// </summary>
    public void Reopen()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_batch is not null)
            {
                FlushLocked();
            }

            CloseLocked();
            OpenFileLocked();
        }
    }

    /// <summary>Closes the file; later records are dropped (and counted).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_batch is not null)
            {
                FlushLocked();
            }

            _disposed = true;
            CloseLocked();
        }
    }

    private void Drop(long bytes, int records)
    {
        _droppedBytes += bytes;
        _droppedRecords += records;
    }

    private bool EnsureOpenLocked()
    {
        if (_file is not null)
        {
            return true;
        }

        try
        {
            OpenFileLocked();
            return true;
        }
        catch (NacelleException)
        {
            return false;
        }
    }

    private void OpenFileLocked()
    {
        FileStream? file = null;
        try
        {
            // Read access only to look at the last byte of an existing file.
            file = new FileStream(Path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite | FileShare.Delete,
                BufferSize = 0,
                UnixCreateMode = _mode,
            });
            var handle = file.SafeFileHandle;
            var length = RandomAccess.GetLength(handle);
            Span<byte> last = stackalloc byte[1];
            if (length > 0 && RandomAccess.Read(handle, last, length - 1) == 1 && last[0] != (byte)'\n')
            {
                RandomAccess.Write(handle, "\n"u8, length);
                length++;
            }

            _offset = length;
            _file = file;
            file = null;
        }
        catch (DirectoryNotFoundException e)
        {
            _lastError = e;
            var directory = System.IO.Path.GetDirectoryName(Path);
            throw new NacelleException(
                ErrorKind.FailedPrecondition,
                $"container log {Path}: log directory {directory} does not exist (kubelet creates it; nacelle does not)",
                e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _lastError = e;
            throw new NacelleException(ErrorKind.FailedPrecondition, $"container log {Path}: cannot open for writing: {e.Message}", e);
        }
        finally
        {
            file?.Dispose();
        }
    }

    private void CloseLocked()
    {
        var file = _file;
        _file = null;
        file?.Dispose();
    }
}
