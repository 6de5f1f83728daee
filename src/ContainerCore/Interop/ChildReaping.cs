using System.Globalization;
using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// The calls of a child subreaper (nacelle-monitor): prctl(PR_SET_CHILD_SUBREAPER), the list of this process's
/// children, and reaping one given pid with waitid(P_PID) — never waitpid(-1), which would steal the exits of
/// children that are reaped through their pidfds.
/// </summary>
public static partial class ChildReaping
{
    private const int PR_SET_CHILD_SUBREAPER = 36;
    private const int PR_GET_CHILD_SUBREAPER = 37;
    private const int P_PID = 1;
    private const int WEXITED = 4;
    private const int WNOHANG = 1;
    private const int EINTR = 4;
    private const int ECHILD = 10;
    private const int SiginfoSize = 128;

    /// <summary>Makes this process the reaper of orphaned descendants (instead of init).</summary>
    public static void BecomeSubreaper()
    {
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"prctl(PR_SET_CHILD_SUBREAPER): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>Whether this process is a child subreaper.</summary>
    public static unsafe bool IsSubreaper()
    {
        var value = 0;
        return prctl(PR_GET_CHILD_SUBREAPER, (nuint)(&value), 0, 0, 0) == 0 && value != 0;
    }

    /// <summary>
    /// The pids of this process's children: /proc/self/task/*/children (each thread's own children), or, on a kernel
    /// without that file, every process whose parent is this one (/proc/*/stat).
    /// </summary>
    public static HashSet<int> Children()
    {
        var children = new HashSet<int>();
        var found = false;
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                string text;
                try
                {
                    text = File.ReadAllText(Path.Combine(task, "children"));
                }
                catch (FileNotFoundException)
                {
                    continue;
                }
                catch (DirectoryNotFoundException)
                {
                    continue; // the thread ended
                }

                found = true;
                foreach (var part in text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    {
                        children.Add(pid);
                    }
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
        }

        return found ? children : ChildrenFromStat();
    }

    private static HashSet<int> ChildrenFromStat()
    {
        var self = Environment.ProcessId;
        var children = new HashSet<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            if (ParentOf(pid) == self)
            {
                children.Add(pid);
            }
        }

        return children;
    }

    /// <summary>(state letter, parent pid) from /proc/PID/stat; null when the process is gone.</summary>
    public static (char State, int Parent)? StatOf(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
        var close = stat.LastIndexOf(')');
        if (close < 0 || close + 2 >= stat.Length)
        {
            return null;
        }

        var fields = stat[(close + 2)..].Split(' ', 3);
        return fields.Length >= 2 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            ? (fields[0][0], parent)
            : null;
    }

    private static int ParentOf(int pid) => StatOf(pid)?.Parent ?? -1;

    /// <summary>
    /// Reaps <paramref name="pid"/> if it is an exited child of this process (waitid(P_PID, WEXITED|WNOHANG)); true when
    /// it was reaped, false when it is still running or not a child.
    /// </summary>
    public static unsafe bool TryReap(int pid)
    {
        var info = stackalloc byte[SiginfoSize];
        while (true)
        {
            new Span<byte>(info, SiginfoSize).Clear();
            if (waitid(P_PID, (uint)pid, info, WEXITED | WNOHANG) == 0)
            {
                return *(int*)(info + 16) == pid; // si_pid: 0 while it runs
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR)
            {
                continue;
            }

            if (errno == ECHILD)
            {
                return false;
            }

            throw new IOException($"waitid(P_PID, {pid}): {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int waitid(int idtype, uint id, byte* infop, int options);
}
