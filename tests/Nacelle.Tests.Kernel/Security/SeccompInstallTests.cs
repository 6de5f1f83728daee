using System.Runtime.ExceptionServices;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Security.Seccomp;

namespace Nacelle.Tests.Kernel.Security;

/// <summary>
/// Installs compiled filters for real. A filter without TSYNC binds only the calling thread, so each test installs it on
/// a dedicated new thread that does its checks and exits; it is never reused, and no thread-pool or main thread is touched.
/// </summary>
public sealed class SeccompInstallTests
{
    private const UnixFileMode Mode0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Mode0755 = Mode0700 | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private static SeccompArch Native => SeccompCompiler.NativeArch()
        ?? throw new PlatformNotSupportedException("seccomp tests need x86_64 or aarch64");

    /// <summary>Runs <paramref name="body"/> on a new thread with the filter installed; rethrows its failure here.</summary>
    private static void OnFilteredThread(byte[] filter, Action body)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                SeccompCalls.SetNoNewPrivileges();
                Assert.True(SeccompCalls.GetNoNewPrivileges());
                SeccompCalls.InstallFilter(filter);
                body();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "seccomp-test",
        };
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the filtered thread did not finish");
        failure?.Throw();
    }

    [Fact]
    public void Mkdir_with_mode_0700_fails_with_eperm_only_on_the_filtered_thread()
    {
        // mkdirat(dfd, path, mode): mode is args[2]; glibc may use mkdir(path, mode) (args[1]) on x86_64, so both are ruled.
        var profile = new SeccompProfile
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls =
            [
                new() { Names = ["mkdirat"], Action = "SCMP_ACT_ERRNO", Args = [new() { Index = 2, Value = 0x1C0, Op = "SCMP_CMP_EQ" }] },
                new() { Names = ["mkdir"], Action = "SCMP_ACT_ERRNO", Args = [new() { Index = 1, Value = 0x1C0, Op = "SCMP_CMP_EQ" }] },
            ],
        };
        var filter = SeccompCompiler.Compile(profile, Native);

        var dir = Directory.CreateTempSubdirectory("nacelle-seccomp-");
        try
        {
            var denied = Path.Combine(dir.FullName, "denied-0700");
            var allowed = Path.Combine(dir.FullName, "allowed-0755");
            Exception? refusal = null;
            OnFilteredThread(filter, () =>
            {
                refusal = Record.Exception(() => Directory.CreateDirectory(denied, Mode0700));
                Directory.CreateDirectory(allowed, Mode0755);
            });

            // EPERM surfaces from .NET as UnauthorizedAccessException.
            Assert.IsType<UnauthorizedAccessException>(refusal);
            Assert.False(Directory.Exists(denied));
            Assert.True(Directory.Exists(allowed));

            // The main thread is not filtered.
            var mainThread = Path.Combine(dir.FullName, "main-0700");
            Directory.CreateDirectory(mainThread, Mode0700);
            Assert.True(Directory.Exists(mainThread));
            Assert.Equal(Mode0700, File.GetUnixFileMode(mainThread));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Getcwd_returns_enosys_only_on_the_filtered_thread()
    {
        const int ENOSYS = 38;
        var profile = new SeccompProfile
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls = [new() { Names = ["getcwd"], Action = "SCMP_ACT_ERRNO", ErrnoRet = ENOSYS }],
        };
        var result = SeccompCompiler.CompileProgram(profile, Native);
        Assert.Empty(result.Warnings);

        var expected = Directory.GetCurrentDirectory();
        Exception? refusal = null;
        string? beforeInstall = null;
        OnFilteredThread(result.Filter, () => refusal = Record.Exception(Directory.GetCurrentDirectory));
        var unfiltered = new Thread(() => beforeInstall = Directory.GetCurrentDirectory());
        unfiltered.Start();
        unfiltered.Join();

        var io = Assert.IsAssignableFrom<IOException>(refusal);
        Assert.Equal(ENOSYS, io.HResult);
        Assert.Equal(expected, beforeInstall);
        Assert.Equal(expected, Directory.GetCurrentDirectory());
    }
}
