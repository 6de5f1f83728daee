using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;
using Nacelle.Monitor.Logging;

namespace Nacelle.Monitor.Stdio;

/// <summary>
/// A container's attached clients: every chunk of its output goes, next to the CRI log, to each attacher's own pipe.
/// The log never waits for an attacher: writes are non-blocking into a pipe of <see cref="PipeSize"/>, and an attacher
/// that cannot take a whole chunk (its pipe stayed full: it is that far behind) is dropped, its pipes closed.
/// </summary>
internal sealed class AttachFanout : IOutputTap
{
    /// <summary>The buffer asked for each attacher's pipe (the kernel's pipe-max-size default; less when refused).</summary>
    public const int PipeSize = 1 << 20;

    private readonly Lock _gate = new();
    private readonly List<Attacher> _attachers = [];
    private bool _stdoutEnded;
    private bool _stderrEnded;

    /// <summary>How many clients are attached.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _attachers.Count;
            }
        }
    }

    /// <summary>
    /// A new attacher for the streams asked (a tty container has only stdout): for each, a pipe whose read end the
    /// caller sends to the client and whose write end stays here. A stream that already ended gets a pipe already closed.
    /// </summary>
    public Attacher Add(bool stdout, bool stderr)
    {
        var attacher = new Attacher();
        try
        {
            lock (_gate)
            {
                if (stdout)
                {
                    attacher.StdoutRead = attacher.Open(CriLogStream.Stdout, ended: _stdoutEnded);
                }

                if (stderr)
                {
                    attacher.StderrRead = attacher.Open(CriLogStream.Stderr, ended: _stderrEnded);
                }

                _attachers.Add(attacher);
            }

            return attacher;
        }
        catch
        {
            attacher.Close();
            attacher.StdoutRead?.Dispose();
            attacher.StderrRead?.Dispose();
            throw;
        }
    }

    /// <summary>The attacher went away: its pipes close (its reader sees the end).</summary>
    public void Remove(Attacher attacher)
    {
        lock (_gate)
        {
            _attachers.Remove(attacher);
            attacher.Close();
        }
    }

    public void Write(CriLogStream stream, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            for (var i = _attachers.Count - 1; i >= 0; i--)
            {
                var attacher = _attachers[i];
                if (attacher.End(stream) is not { } pipe)
                {
                    continue;
                }

                int written;
                try
                {
                    written = DescriptorCalls.Write(pipe, data);
                }
                catch (IOException)
                {
                    // EPIPE: the client closed its end; it detaches when its connection closes.
                    attacher.CloseEnd(stream);
                    continue;
                }

                if (written != data.Length)
                {
                    _attachers.RemoveAt(i);
                    attacher.Close();
                    attacher.Drop($"too slow: its {(stream == CriLogStream.Stderr ? "stderr" : "stdout")} pipe stayed full ({PipeSize} bytes behind)");
                }
            }
        }
    }

    public void End(CriLogStream stream)
    {
        lock (_gate)
        {
            if (stream == CriLogStream.Stderr)
            {
                _stderrEnded = true;
            }
            else
            {
                _stdoutEnded = true;
            }

            foreach (var attacher in _attachers)
            {
                attacher.CloseEnd(stream);
            }
        }
    }
}

/// <summary>One attached client: the write ends of its output pipes, and whether the monitor dropped it.</summary>
internal sealed class Attacher
{
    private SafeFileHandle? _stdout;
    private SafeFileHandle? _stderr;

    /// <summary>The read ends for the client (the caller sends and then closes them).</summary>
    public SafeFileHandle? StdoutRead { get; set; }
    public SafeFileHandle? StderrRead { get; set; }

    /// <summary>Completes (from the loop's queue) when the monitor dropped this attacher; the result says why.</summary>
    public TaskCompletionSource<string> Dropped { get; } = new();

    internal SafeFileHandle Open(CriLogStream stream, bool ended)
    {
        var (read, write) = DescriptorCalls.CreatePipe(nonBlockingRead: false, nonBlockingWrite: true);
        DescriptorCalls.SetPipeSize(write, AttachFanout.PipeSize); // refused: the default size, still never waited on
        if (ended)
        {
            write.Dispose();
        }
        else if (stream == CriLogStream.Stderr)
        {
            _stderr = write;
        }
        else
        {
            _stdout = write;
        }

        return read;
    }

    internal SafeFileHandle? End(CriLogStream stream) => stream == CriLogStream.Stderr ? _stderr : _stdout;

    internal void CloseEnd(CriLogStream stream)
    {
        if (stream == CriLogStream.Stderr)
        {
            _stderr?.Dispose();
            _stderr = null;
        }
        else
        {
            _stdout?.Dispose();
            _stdout = null;
        }
    }

    internal void Close()
    {
        CloseEnd(CriLogStream.Stdout);
        CloseEnd(CriLogStream.Stderr);
    }

    internal void Drop(string reason) => FdReactor.Loop.Post(() => Dropped.TrySetResult(reason));
}
