using System.Runtime.InteropServices;

namespace Nacelle.ContainerCore.Interop;

/// <summary>The C library's heap (malloc), which native code in the process uses: SQLite, the runtime's own tables.</summary>
public static partial class NativeHeap
{
    /// <summary>mallopt(3)'s M_ARENA_MAX.</summary>
    private const int M_ARENA_MAX = -8;

    /// <summary>
    /// malloc_trim(3) with no padding: returns to the kernel every whole free page of every malloc arena (the main heap's
    /// top with brk, the rest with MADV_DONTNEED), not only the free space at the top of the main heap that free() gives
    /// back on its own. Memory in use is untouched. True if any was released.
    /// </summary>
    public static bool Trim() => malloc_trim(0) != 0;

    /// <summary>
    /// mallopt(M_ARENA_MAX): at most <paramref name="arenas"/> malloc arenas from now on (glibc's default is 8 per core,
    /// each thread that meets a locked arena gets another). Arenas made before the call stay. True if glibc took it.
    /// </summary>
    public static bool LimitArenas(int arenas) => mallopt(M_ARENA_MAX, arenas) == 1;

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);

    [LibraryImport("libc")]
    private static partial int mallopt(int param, int value);
}
