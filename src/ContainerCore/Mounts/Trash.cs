using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Mounts;

/// <summary>
/// Directories removed in the background. <see cref="Discard"/> takes a directory out of its place at once (one rename
/// into this trash directory, on the same filesystem), so its name is free and nothing looks there again; a background
/// task then unmounts what is mounted below it (deepest first, lazily) and deletes it, one directory at a time. Deleting
/// a tree costs a metadata operation per entry, which a loaded disk turns into tens of milliseconds: the rpc that removed
/// it need not wait. A daemon stopped or killed before the deletion finished leaves the directory in the trash, where
/// <see cref="DeleteLeftovers"/> (called at start) finds and deletes it.
/// </summary>
public sealed partial class Trash
{
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private Task _last = Task.CompletedTask;
    private int _pending;

    /// <param name="directory">The trash directory: on the same filesystem as every directory discarded into it.</param>
    /// <param name="logger">Where a failed deletion is logged.</param>
    public Trash(string directory, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        _log = logger ?? NullLogger.Instance;
    }

    /// <summary>The trash directory.</summary>
    public string Directory { get; }

    /// <summary>How many discarded directories are not deleted yet.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Completes when every directory discarded so far is deleted (or its deletion failed and was logged).</summary>
    public Task Emptied
    {
        get
        {
            lock (_lock)
            {
                return _last;
            }
        }
    }

    /// <summary>
    /// Moves <paramref name="path"/> into the trash and deletes it in the background; returns the deletion, which never
    /// fails (a failure is logged, and the directory stays in the trash for the next start). A path that does not exist is
    /// nothing to do. A path on another filesystem than the trash is deleted here and now.
    /// </summary>
    public Task Discard(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!System.IO.Directory.Exists(path))
        {
            return Task.CompletedTask;
        }

        System.IO.Directory.CreateDirectory(Directory);
        var target = Path.Combine(Directory, $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(path))}.{Guid.NewGuid():N}");
        try
        {
            System.IO.Directory.Move(path, target);
        }
        catch (IOException) when (!System.IO.Directory.Exists(target))
        {
            // Not movable into the trash (another filesystem): deleted where it is, before the caller goes on.
            Delete(path);
            return Task.CompletedTask;
        }

        return Schedule(target);
    }

    /// <summary>Deletes <paramref name="path"/> (in the trash) after every deletion scheduled before it.</summary>
    private Task Schedule(string path)
    {
        lock (_lock)
        {
            Interlocked.Increment(ref _pending);
            var previous = _last;
            _last = Task.Run(async () =>
            {
                await previous.ConfigureAwait(false);
                DeleteLogged(path);
                Interlocked.Decrement(ref _pending);
            });
            return _last;
        }
    }

    /// <summary>Deletes what a previous run left in the trash, in the background like a discarded directory (call it at
    /// start); returns how many directories it found.</summary>
    public int DeleteLeftovers()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        var left = System.IO.Directory.GetDirectories(Directory);
        foreach (var path in left)
        {
            Schedule(path);
        }

        return left.Length;
    }

    private void DeleteLogged(string path)
    {
        try
        {
            Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(_log, path, e.Message);
        }
    }

    /// <summary>Unmounts everything at or below <paramref name="path"/> (deepest first, each mount point until nothing is
    /// left on it), then deletes the tree, which no longer crosses into any mount.</summary>
    private static void Delete(string path)
    {
        foreach (var point in Interop.Mounts.MountPointsUnder(path).Distinct(StringComparer.Ordinal).OrderByDescending(p => p.Length))
        {
            for (var i = 0; i < 64 && Interop.Mounts.Unmount(point); i++)
            {
            }
        }

        if (System.IO.Directory.Exists(path))
        {
            System.IO.Directory.Delete(path, recursive: true);
        }
    }

    [LoggerMessage(4100, LogLevel.Warning, "Deleting {Path} in the background failed: {Reason}; it stays in the trash until the next start")]
    private static partial void LogDeleteFailed(ILogger logger, string path, string reason);
}
