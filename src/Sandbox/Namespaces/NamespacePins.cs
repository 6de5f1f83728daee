using Nacelle.Common;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Sandbox.Namespaces;

/// <summary>
/// Pins a pod's namespaces as files under <c>/run/nacelle/ns/&lt;pod&gt;/</c> (bind mounts of /proc/PID/ns/*), so they
/// outlive pause-init's pid being looked up: CNI gets a netns path, containers join by path, and a restarted daemon
/// finds them again. Every pin has its undo (<see cref="Unpin"/>), which is idempotent.
/// </summary>
public sealed class NamespacePins(string root)
{
    /// <summary>Default root of the pins.</summary>
    public const string DefaultRoot = "/run/nacelle/ns";

    /// <summary>The namespace files pause-init can hold (names as in /proc/PID/ns).</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["net", "ipc", "uts", "pid", "user"];

    public string Root { get; } = root;

    public string PathOf(string podId, string kind) => Path.Combine(Directory(podId), kind);

    private string Directory(string podId) =>
        podId.Length > 0 && !podId.Contains('/') && podId is not ("." or "..")
            ? Path.Combine(Root, podId)
            : throw NacelleException.InvalidArgument($"pod id '{podId}' cannot name a directory");

    /// <summary>Pins the <paramref name="kinds"/> namespaces of <paramref name="pid"/>; on failure, unpins what it pinned.</summary>
    public IReadOnlyDictionary<string, string> Pin(string podId, int pid, IEnumerable<string> kinds)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        var dir = Directory(podId);
        System.IO.Directory.CreateDirectory(dir);
        var pinned = new Dictionary<string, string>(StringComparer.Ordinal);
        var touched = new List<string>();
        try
        {
            foreach (var kind in kinds)
            {
                if (!Kinds.Contains(kind))
                {
                    throw NacelleException.InvalidArgument($"'{kind}' is not a namespace a pod pins ({string.Join(", ", Kinds)})");
                }

                var target = Path.Combine(dir, kind);
                touched.Add(kind);
                File.WriteAllBytes(target, []);
                Mounts.Bind($"/proc/{pid}/ns/{kind}", target);
                pinned[kind] = target;
            }

            return pinned;
        }
        catch (Exception e) when (e is not NacelleException)
        {
            Unpin(podId, touched);
            throw NacelleException.Internal($"cannot pin the namespaces of pod {podId} (pid {pid}): {e.Message}", e);
        }
        catch
        {
            Unpin(podId, touched);
            throw;
        }
    }

    /// <summary>
    /// Creates a network namespace with no process in it and pins it as the pod's "net" (pause-init then joins it by
    /// path), so that CNI can set it up while the monitor and pause-init start. A thread of its own enters the new
    /// namespace, pins it and goes back before it ends; no other code runs on it. Undo: <see cref="Unpin"/>.
    /// </summary>
    public string PinNewNetwork(string podId)
    {
        var dir = Directory(podId);
        System.IO.Directory.CreateDirectory(dir);
        var target = Path.Combine(dir, "net");
        File.WriteAllBytes(target, []);
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var home = MountTrees.OpenNamespace("/proc/thread-self/ns/net");
                NamespaceCalls.UnshareNetwork();
                try
                {
                    Mounts.Bind("/proc/thread-self/ns/net", target);
                }
                finally
                {
                    // Back home; should even this fail, the thread ends here and nothing else ever runs in the new namespace.
                    NamespaceCalls.JoinNetwork(home);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }) { IsBackground = true, Name = "netns" };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            Unpin(podId, ["net"]);
            throw failure as NacelleException ?? NacelleException.Internal($"cannot create the network namespace of pod {podId}: {failure.Message}", failure);
        }

        return target;
    }

    /// <summary>
    /// Unmounts and removes the pod's pins of <paramref name="kinds"/>, every pin when null, and the pod's directory once
    /// no pin is left in it; a pod with no pins is fine. The undo of one pinning names what it pinned: the network
    /// namespace made first (<see cref="PinNewNetwork"/>) stays pinned while the undo of pause-init's pins runs, so that
    /// the CNI DEL undone after them still finds it.
    /// </summary>
    public void Unpin(string podId, IEnumerable<string>? kinds = null)
    {
        var dir = Directory(podId);
        if (!System.IO.Directory.Exists(dir))
        {
            return;
        }

        var files = kinds is null ? System.IO.Directory.GetFiles(dir) : kinds.Select(kind => Path.Combine(dir, kind)).Where(File.Exists).ToArray();
        foreach (var file in files)
        {
            Mounts.Unmount(file);
            File.Delete(file);
        }

        if (!System.IO.Directory.EnumerateFileSystemEntries(dir).Any())
        {
            System.IO.Directory.Delete(dir);
        }
    }
}
