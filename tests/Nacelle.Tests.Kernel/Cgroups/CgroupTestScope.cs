using System.Diagnostics;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Tests.Kernel.Cgroups;

/// <summary>
/// A unique test parent cgroup (/nacelle-test-&lt;random&gt;) and everything a test starts in it. Disposal kills the
/// started processes by pid and removes the cgroups it created (children first), even when the test failed.
/// </summary>
internal sealed class CgroupTestScope : IAsyncDisposable
{
    private readonly List<Process> _processes = [];
    private readonly List<ICgroup> _cgroups = [];

    public CgroupTestScope()
    {
        Parent = "/nacelle-test-" + Guid.NewGuid().ToString("N")[..12];
        Layout = CgroupLayout.Detect();
        Manager = new CgroupManager(Layout, Parent);
    }

    public string Parent { get; }

    public CgroupLayout Layout { get; }

    public CgroupManager Manager { get; }

    public bool HasV1 => Layout.Mode is CgroupMode.Legacy or CgroupMode.Hybrid;

    public ICgroup Create(string name)
    {
        var cgroup = Manager.Create(name);
        _cgroups.Add(cgroup);
        return cgroup;
    }

    public V2Cgroup CreateUnified(string name)
    {
        var cgroup = Manager.CreateUnified(name);
        _cgroups.Add(cgroup);
        return cgroup;
    }

    /// <summary>
    /// Starts /bin/sh that waits for a line on stdin, moves it into <paramref name="cgroup"/>, then releases it to run
    /// <paramref name="script"/> (so everything the script does happens inside the cgroup).
    /// </summary>
    public Process StartIn(ICgroup cgroup, string script)
    {
        var process = Start("/bin/sh", "-c", "read x; " + script);
        cgroup.AddProcess(process.Id);
        process.StandardInput.WriteLine("go");
        process.StandardInput.Flush();
        return process;
    }

    public Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info)!;
        _processes.Add(process);
        return process;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                Signals.Send(process.Id, Signals.SIGKILL);
                process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        for (var i = _cgroups.Count - 1; i >= 0; i--)
        {
            try
            {
                if (_cgroups[i] is V1Cgroup v1 && v1.FreezerState() == "FROZEN")
                {
                    await v1.ThawAsync(timeout.Token);
                }

                await _cgroups[i].RemoveAsync(timeout.Token);
            }
            catch (Exception)
            {
                // keep cleaning the rest; a leftover directory is reported by the tests' own asserts
            }
        }

        try
        {
            await Manager.Open(Parent).RemoveAsync(timeout.Token);
        }
        catch (Exception)
        {
        }
    }
}
