using System.Diagnostics;

namespace Nacelle.Tests.Support;

/// <summary>Host programs the tests run (ip, iptables, nsenter, busybox), each to completion.</summary>
public static class TestProcesses
{
    /// <summary>Runs a program to completion (30 s at most, then it and its children are killed) and returns its exit
    /// code and output; stdin is closed at once.</summary>
    public static (int Exit, string Stdout, string Stderr) Run(string file, params string[] arguments)
        => Run(TimeSpan.FromSeconds(30), null, file, arguments);

    /// <summary>As <see cref="Run(string, string[])"/>, for programs that may take longer (package builds, lintian).</summary>
    public static (int Exit, string Stdout, string Stderr) Run(TimeSpan timeout, string file, params string[] arguments)
        => Run(timeout, null, file, arguments);

    /// <summary>Runs a program to completion (<paramref name="timeout"/> at most) with extra environment variables.</summary>
    public static (int Exit, string Stdout, string Stderr) Run(
        TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, stdout.Result, "timed out: " + stderr.Result);
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
