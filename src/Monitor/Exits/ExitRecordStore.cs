using System.Text.Json;
using Nacelle.Common;

namespace Nacelle.Monitor.Exits;

/// <summary>
/// The monitor's durable record of process exits: one small JSON file per container/exec id (<c>&lt;id&gt;.json</c>)
/// in one directory, so that an exit observed before a crash of the monitor or the daemon is still known after it.
/// </summary>
/// <remarks>
/// <para>A record is written atomically: to a temporary file (<c>.&lt;id&gt;.&lt;random&gt;.tmp</c>, ignored by readers),
/// which is fsynced, then renamed over <c>&lt;id&gt;.json</c>. A reader therefore sees the old record or the new one,
/// never a mix, and after a crash either of them; the writer removes stale temporary files at start
/// (<see cref="RemoveTemporaryFiles"/>).</para>
/// <para>The containing directory is not fsynced after the rename: .NET cannot open a directory for fsync without
/// P/Invoke (opening one with <c>File.OpenHandle</c> is refused), and P/Invoke belongs in <c>ContainerCore/Interop</c>.
/// Until such a call exists, a power loss right after <see cref="Save"/> may lose the rename (the record then reads as
/// absent or as its previous version), though never as a torn file. The files live under <c>/run</c> (tmpfs) by
/// design, where a power loss loses them anyway; the guarantee that matters is surviving a process crash.</para>
/// </remarks>
public sealed class ExitRecordStore
{
    private const string Extension = ".json";
    private const string TempExtension = ".tmp";
    private const int MaxIdLength = 200;

    /// <summary>
    /// Opens the store in <paramref name="directory"/>, creating it (mode 0700) if needed. Any number of instances may
    /// read one directory; only one (the pod's monitor) may write it.
    /// </summary>
    public ExitRecordStore(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>The directory holding the records.</summary>
    public string Directory { get; }

    /// <summary>
    /// Writes <paramref name="record"/> durably, replacing any earlier record with the same id. When this returns, the
    /// record survives a crash of this process (see the remarks about the directory fsync).
    /// </summary>
    public void Save(ExitRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        ValidateId(record.Id);
        var bytes = JsonMetadata.Serialize(record, ExitRecordJsonContext.Current.ExitRecord);
        var final = PathOf(record.Id);
        var temp = Path.Combine(Directory, $".{record.Id}.{Guid.NewGuid():N}{TempExtension}");
        try
        {
            using (var file = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write))
            {
                RandomAccess.Write(file, bytes, fileOffset: 0);
                RandomAccess.FlushToDisk(file);
            }

            File.Move(temp, final, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw NacelleException.Internal($"exit record {record.Id}: cannot write {final}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The record of <paramref name="id"/>, or null when there is none. Throws <see cref="NacelleException"/>
    /// (<see cref="ErrorKind.Internal"/>) when the file exists but is not a valid record for that id.
    /// </summary>
    public ExitRecord? TryGet(string id)
    {
        ValidateId(id);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(PathOf(id));
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        return Deserialize(id, bytes);
    }

    /// <summary>
    /// Every readable record, ordered by exit time. Files that are not valid records are skipped and their paths added
    /// to <paramref name="unreadable"/> when given (the caller logs them).
    /// </summary>
    public IReadOnlyList<ExitRecord> List(ICollection<string>? unreadable = null)
    {
        var records = new List<ExitRecord>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*" + Extension))
        {
            var id = Path.GetFileName(path)[..^Extension.Length];
            if (!IsValidId(id))
            {
                unreadable?.Add(path);
                continue;
            }

            try
            {
                records.Add(Deserialize(id, File.ReadAllBytes(path)));
            }
            catch (FileNotFoundException)
            {
                // Deleted between the listing and the read.
            }
            catch (NacelleException)
            {
                unreadable?.Add(path);
            }
        }

        records.Sort((a, b) => a.ExitedAt.CompareTo(b.ExitedAt) is var byTime and not 0 ? byTime : string.CompareOrdinal(a.Id, b.Id));
        return records;
    }

    /// <summary>Removes the record of <paramref name="id"/>; false when there was none.</summary>
    public bool Delete(string id)
    {
        ValidateId(id);
        var path = PathOf(id);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    /// <summary>
    /// Deletes temporary files left by a writer that crashed between writing a record and renaming it; returns how many.
    /// Only the directory's single writer may call this, and only before it saves anything (at monitor start): another
    /// writer's temporary file may be in flight at any other time.
    /// </summary>
    public int RemoveTemporaryFiles()
    {
        var removed = 0;
        foreach (var stale in System.IO.Directory.EnumerateFiles(Directory, "." + "*" + TempExtension))
        {
            File.Delete(stale);
            removed++;
        }

        return removed;
    }

    /// <summary>
    /// True for ids usable as file names: 1-200 characters of <c>[A-Za-z0-9_.-]</c>, not starting with a dot (container
    /// ids are 64 hex digits; exec ids are chosen by the daemon).
    /// </summary>
    public static bool IsValidId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdLength || id[0] == '.')
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static void ValidateId(string? id)
    {
        if (!IsValidId(id))
        {
            throw NacelleException.InvalidArgument($"exit record id \"{id}\" is not valid (1-{MaxIdLength} characters of A-Z a-z 0-9 _ . -, not starting with a dot)");
        }
    }

    private string PathOf(string id) => Path.Combine(Directory, id + Extension);

    private ExitRecord Deserialize(string id, byte[] bytes)
    {
        ExitRecord? record;
        try
        {
            record = JsonSerializer.Deserialize(bytes, ExitRecordJsonContext.Current.ExitRecord);
        }
        catch (JsonException e)
        {
            throw NacelleException.Internal($"exit record {PathOf(id)} is not valid JSON: {e.Message}", e);
        }

        if (record is null || record.Id != id)
        {
            throw NacelleException.Internal($"exit record {PathOf(id)} holds id \"{record?.Id}\", expected \"{id}\"");
        }

        return record;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a stale temporary file is removed when the store is next opened.
        }
    }
}
