using Microsoft.Win32.SafeHandles;
using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>
/// The spawn helper as it is executed: a sealed in-memory copy of <c>nacelle-spawn</c>, never the file on disk.
/// A process in a container can reach the helper while it sets the container up (/proc/PID/exe); were that the
/// file on the node, a root process in the container could rewrite it and run code on the host the next time
/// (CVE-2019-5736). A memfd sealed against writes, growth and shrinking cannot be changed by anyone, root included.
/// One copy serves the whole process; the daemon hands its copy to every pod's monitor (<see cref="Adopt"/>), so the
/// node holds one copy, not one per pod.
/// </summary>
public sealed class SpawnHelperBinary : IDisposable
{
    /// <summary>Environment variable that points at another helper binary (tests, packaging).</summary>
    public const string PathVariable = "NACELLE_SPAWN_HELPER";

    private const int AllSeals = SpawnCalls.F_SEAL_SEAL | SpawnCalls.F_SEAL_SHRINK | SpawnCalls.F_SEAL_GROW | SpawnCalls.F_SEAL_WRITE;

    private static readonly Lock SharedGate = new();
    private static SpawnHelperBinary? _shared;

    private readonly SafeFileHandle _memfd;

    /// <summary>The lowest fd number the helper copy may have: above the five the helper is started with (0-4).</summary>
    public const int FirstFreeFd = 16;

    private SpawnHelperBinary(string sourcePath, SafeFileHandle memfd)
    {
        SourcePath = sourcePath;
        _memfd = memfd;
    }

    /// <summary>Where the helper was read from (or the fd it was inherited as).</summary>
    public string SourcePath { get; }

    /// <summary>The path to execute: the memfd through /proc/self/fd (resolved in the spawned child before exec).</summary>
    public string ExecPath => $"/proc/self/fd/{(int)_memfd.DangerousGetHandle()}";

    /// <summary>The fd number of the copy (at least <see cref="FirstFreeFd"/>).</summary>
    public int Fd => (int)_memfd.DangerousGetHandle();

    /// <summary>The seals on the copy (all four when loaded by <see cref="Load"/>).</summary>
    public int Seals => SpawnCalls.GetSeals(_memfd);

    /// <summary>The helper next to this program (or at $NACELLE_SPAWN_HELPER).</summary>
    public static string DefaultPath =>
        Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } path ? path : Path.Combine(AppContext.BaseDirectory, "nacelle-spawn");

    /// <summary>The process-wide copy of the helper at <see cref="DefaultPath"/>, loaded on first use.</summary>
    public static SpawnHelperBinary Shared
    {
        get
        {
            lock (SharedGate)
            {
                return _shared ??= Load(DefaultPath);
            }
        }
    }

    /// <summary>Makes <paramref name="helper"/> the process-wide copy, before anything loaded one; refused after.</summary>
    public static void UseShared(SpawnHelperBinary helper)
    {
        ArgumentNullException.ThrowIfNull(helper);
        lock (SharedGate)
        {
            if (_shared is not null)
            {
                throw new InvalidOperationException("the spawn helper copy was loaded already");
            }

            _shared = helper;
        }
    }

    /// <summary>Takes over a copy another process made and passed on as <paramref name="fd"/> (the daemon to a pod's
    /// monitor), moving it to a close-on-exec fd of at least <see cref="FirstFreeFd"/>. Fails closed: only a memfd
    /// carrying all four seals, whose content no one can change any more, is accepted.</summary>
    public static SpawnHelperBinary Adopt(int fd)
    {
        var inherited = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            int seals;
            try
            {
                seals = SpawnCalls.GetSeals(inherited);
            }
            catch (IOException e)
            {
                throw NacelleException.FailedPrecondition($"fd {fd} is not a sealed copy of the spawn helper ({e.Message})");
            }

            if ((seals & AllSeals) != AllSeals)
            {
                throw NacelleException.FailedPrecondition(
                    $"fd {fd} is not a sealed copy of the spawn helper: its seals are 0x{seals:x}, all of 0x{AllSeals:x} are needed");
            }

            return new SpawnHelperBinary($"fd {fd}", SpawnCalls.DuplicateAtLeast(inherited, FirstFreeFd));
        }
        finally
        {
            inherited.Dispose();
        }
    }

    /// <summary>The copy as a handle, to pass on to a child process (which takes it over with <see cref="Adopt"/>).</summary>
    public SafeFileHandle Handle => _memfd;

    /// <summary>Copies the helper at <paramref name="path"/> into a memfd and seals it.</summary>
    public static SpawnHelperBinary Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NacelleException.FailedPrecondition(
                $"the spawn helper {path} cannot be read ({e.Message}); it is built with nacelle (gcc) and installed next to it");
        }

        var memfd = SpawnCalls.CreateMemoryFile("nacelle-spawn", allowSealing: true);
        try
        {
            RandomAccess.Write(memfd, bytes, 0);
            SpawnCalls.AddSeals(memfd, AllSeals);
            // The child resolves /proc/self/fd/N after its fds 0-4 were set up: N must not be one of them, or the
            // path names the container's stdio or the message instead of the helper (seen as ENOEXEC in the daemon).
            var high = SpawnCalls.DuplicateAtLeast(memfd, FirstFreeFd);
            memfd.Dispose();
            return new SpawnHelperBinary(path, high);
        }
        catch
        {
            memfd.Dispose();
            throw;
        }
    }

    public void Dispose() => _memfd.Dispose();
}
