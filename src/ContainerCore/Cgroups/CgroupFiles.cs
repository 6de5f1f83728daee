using System.Globalization;
using System.Text;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Reactor;

namespace Nacelle.ContainerCore.Cgroups;

/// <summary>Reading and writing cgroup control files, with errors that name the file and errno.</summary>
internal static class CgroupFiles
{
    /// <summary>How long Freeze/Thaw/Kill/Remove wait for the kernel before giving up.</summary>
    internal static readonly TimeSpan WaitBound = TimeSpan.FromSeconds(10);

    /// <summary>Writes a value; throws NotFound for ESRCH (a pid that vanished), Internal otherwise.</summary>
    public static void Write(string path, string value)
    {
        var errno = CgroupCalls.WriteFile(path, value);
        if (errno == 0)
        {
            return;
        }

        throw errno == CgroupCalls.ESRCH
            ? NacelleException.NotFound($"write \"{value}\" to {path}: {CgroupCalls.ErrorText(errno)}")
            : NacelleException.Internal($"write \"{value}\" to {path}: {CgroupCalls.ErrorText(errno)} (errno {errno})");
    }

    /// <summary>Writes a resource value, refusing with the field's name when the controller file does not exist.</summary>
    public static void WriteResource(string directory, string file, string value, string field)
    {
        var path = Path.Combine(directory, file);
        if (!File.Exists(path))
        {
            throw NacelleException.FailedPrecondition(
                $"cgroup resources: {field} needs {file}, which {directory} does not have (controller not available)");
        }

        Write(path, value);
    }

    /// <summary>A control file's text; null when it is missing or its cgroup is gone (the one read of TryReadBytes).</summary>
    public static string? ReadOrNull(string path) => TryReadBytes(path, out var text) ? Encoding.UTF8.GetString(text) : null;

    public static string Read(string path) =>
        ReadOrNull(path) ?? throw NacelleException.NotFound($"cgroup file {path} does not exist");

    /// <summary>A single-number file; "max" reads as null; missing file reads as null.</summary>
    public static ulong? ReadNumber(string path)
    {
        if (!TryReadBytes(path, out var text))
        {
            return null;
        }

        return CgroupText.TryParseNumber(text, out var value)
            ? value
            : throw NacelleException.Internal($"cgroup file {path}: \"{Encoding.UTF8.GetString(text).Trim()}\" is not a number");
    }

    /// <summary>Parses a flat keyed file ("key value" per line: cpu.stat, memory.stat, memory.events, oom_control);
    /// a missing file has no keys.</summary>
    public static Dictionary<string, ulong> ReadKeyed(string path) =>
        TryReadBytes(path, out var text) ? CgroupText.ParseKeyed(text) : new Dictionary<string, ulong>(StringComparer.Ordinal);

    /// <summary>
    /// Only <paramref name="keys"/> of a flat keyed file, into <paramref name="values"/> (0 for a key the file lacks);
    /// returns how many "key value" lines the file has, 0 when it is missing.
    /// </summary>
    public static int ReadKeyed(string path, ReadOnlySpan<string> keys, Span<ulong> values)
    {
        if (!TryReadBytes(path, out var text))
        {
            values[..keys.Length].Clear();
            return 0;
        }

        return CgroupText.ParseKeyed(text, keys, values);
    }

    // The bytes of a control file (PseudoFiles.TryRead: parse them at once); false when it does not exist, or when its
    // cgroup was removed between the file's open and its read (ENODEV): systemd removes a scope as soon as its last
    // process is gone, which is what a stop that kills through the cgroup brings about.
    private static bool TryReadBytes(string path, out ReadOnlySpan<byte> text)
    {
        try
        {
            return PseudoFiles.TryRead(path, out text);
        }
        catch (IOException e) when (e.HResult == PseudoFileCalls.ENODEV)
        {
            text = default;
            return false;
        }
        catch (IOException e)
        {
            throw NacelleException.Internal(e.Message, e);
        }
    }

    /// <summary>The pids in a cgroup.procs file; none when it is missing or its cgroup is gone (see TryReadBytes).</summary>
    public static IReadOnlyList<int> ReadPids(string path)
    {
        var pids = new List<int>();
        if (!TryReadBytes(path, out var text))
        {
            return pids;
        }

        foreach (var range in text.Split((byte)'\n'))
        {
            if (int.TryParse(text[range], NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                pids.Add(pid);
            }
        }

        return pids;
    }

    /// <summary>rmdir with retries while the kernel reports EBUSY; a missing directory counts as removed.</summary>
    public static async Task RemoveDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + WaitBound;
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            var errno = CgroupCalls.RemoveDirectory(path);
            if (errno is 0 or CgroupCalls.ENOENT)
            {
                return;
            }

            if (errno != CgroupCalls.EBUSY || DateTime.UtcNow >= deadline)
            {
                throw NacelleException.Internal($"rmdir {path}: {CgroupCalls.ErrorText(errno)} (errno {errno})");
            }

            await FdReactor.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }

    /// <summary>The names of the subdirectories (child cgroups) found in any of <paramref name="directories"/>, sorted;
    /// a directory that does not exist has none.</summary>
    public static IReadOnlyList<string> ChildNames(IEnumerable<string> directories)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var directory in directories)
        {
            try
            {
                foreach (var child in System.IO.Directory.EnumerateDirectories(directory))
                {
                    names.Add(Path.GetFileName(child));
                }
            }
            catch (DirectoryNotFoundException)
            {
                // not in this hierarchy (or removed meanwhile)
            }
        }

        return [.. names];
    }

    /// <summary>
    /// mkdir -p of <paramref name="relative"/> under <paramref name="root"/>; calls <paramref name="prepare"/> (parent,
    /// level) for every level from the top down, new or found: a level another thread or process has just made may not
    /// be prepared yet (its maker still about to write it), so whatever a level needs before it takes children must be
    /// idempotent and checked each time.
    /// </summary>
    public static void CreateDirectories(string root, string relative, Action<string, string>? prepare = null)
    {
        var current = root;
        foreach (var segment in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var parent = current;
            current = Path.Combine(current, segment);
            if (Directory.Exists(current))
            {
                prepare?.Invoke(parent, current);
                continue;
            }

            try
            {
                Directory.CreateDirectory(current);
            }
            catch (IOException e)
            {
                throw NacelleException.Internal($"mkdir {current}: {e.Message}", e);
            }
            catch (UnauthorizedAccessException e)
            {
                throw NacelleException.Internal($"mkdir {current}: {e.Message}", e);
            }

            prepare?.Invoke(parent, current);
        }
    }

    /// <summary>Polls until <paramref name="done"/> is true or the wait bound passes; returns whether it became true.</summary>
    public static async Task<bool> WaitUntilAsync(Func<bool> done, CancellationToken cancellationToken, Action? retry = null)
    {
        var deadline = DateTime.UtcNow + WaitBound;
        var delay = TimeSpan.FromMilliseconds(1);
        while (!done())
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await FdReactor.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 100));
            retry?.Invoke();
        }

        return true;
    }

    /// <summary>After a kill: waits, bounded, until cgroup.procs is empty; DeadlineExceeded naming the survivors otherwise.</summary>
    public static async Task WaitUntilEmptyAsync(ICgroup cgroup, CancellationToken cancellationToken, Action? retry)
    {
        if (!await WaitUntilAsync(() => cgroup.Processes().Count == 0, cancellationToken, retry).ConfigureAwait(false))
        {
            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"cgroup {cgroup.Path}: processes {string.Join(' ', cgroup.Processes())} still alive {WaitBound.TotalSeconds} s after SIGKILL");
        }
    }

    /// <summary>Normalises a cgroup path to "/a/b", refusing empty, "." and ".." segments.</summary>
    public static string NormalizePath(string path, string what)
    {
        if (path is null || path.Contains('\0'))
        {
            throw NacelleException.InvalidArgument($"cgroup {what} \"{path}\" is not a path");
        }

        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var segment in segments)
        {
            if (segment is "." or "..")
            {
                throw NacelleException.InvalidArgument($"cgroup {what} \"{path}\" contains \"{segment}\"");
            }
        }

        return "/" + string.Join('/', segments);
    }
}
