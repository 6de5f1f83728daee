using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>
/// posix_spawn(3): starts a plain host process whose exit the caller reaps itself (through a pidfd). .NET's Process
/// class reaps its own children, which would race with that; containers are spawned by the C helper instead.
/// </summary>
public static partial class PosixSpawn
{
    /// <summary>Starts <paramref name="path"/> with <paramref name="argv"/> and <paramref name="environment"/>; returns its pid.</summary>
    public static unsafe int Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment)
    {
        var strings = new List<IntPtr>();
        try
        {
            var args = ToArray(argv, strings);
            var env = ToArray(environment, strings);
            int pid;
            int result;
            fixed (IntPtr* argvPtr = args, envPtr = env)
            {
                result = posix_spawn(&pid, path, IntPtr.Zero, IntPtr.Zero, argvPtr, envPtr);
            }

            if (result != 0)
            {
                throw new IOException($"posix_spawn {path}: {Marshal.GetPInvokeErrorMessage(result)}", result);
            }

            return pid;
        }
        finally
        {
            foreach (var s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    // A NULL-terminated char* array; the strings are freed by the caller.
    private static IntPtr[] ToArray(IReadOnlyList<string> values, List<IntPtr> owned)
    {
        var array = new IntPtr[values.Count + 1];
        for (var i = 0; i < values.Count; i++)
        {
            array[i] = Marshal.StringToCoTaskMemUTF8(values[i]);
            owned.Add(array[i]);
        }

        return array;
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int posix_spawn(int* pid, string path, IntPtr fileActions, IntPtr attributes, IntPtr* argv, IntPtr* envp);
}
