using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>The calling thread's kernel identity.</summary>
public static partial class ThreadCalls
{
    /// <summary>gettid(2): the calling thread's id (the process id on its main thread).</summary>
    public static int CurrentThreadId() => gettid();

    [LibraryImport("libc")]
    private static partial int gettid();
}
