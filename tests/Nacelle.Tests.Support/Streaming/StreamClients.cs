using System.Diagnostics;
using Xunit;

namespace Nacelle.Tests.Support.Streaming;

/// <summary>The clients nacelle did not write (a Go program on Debian's spdystream, a Python script on Debian's
/// python3-kubernetes) and the helper scripts, from Streaming/Clients beside the test binaries (this project copies
/// them into every test project that references it). Used by the protocol tests (in process) and the end-to-end tests
/// (the daemon).</summary>
public static class StreamClients
{
    private static readonly string Directory = Path.Combine(AppContext.BaseDirectory, "Streaming", "Clients");
    private static readonly Lazy<(string? Path, string? Why)> GoClient = new(BuildGoClient);

    public const string SpdystreamSource = "/usr/share/gocode/src/github.com/moby/spdystream";
    public const string Python = "/usr/bin/python3";

    public static string PtyRun => Path.Combine(Directory, "ptyrun.py");

    public static string WsClient => Path.Combine(Directory, "wsclient.py");

    /// <summary>The built Go client, or null with the reason (Go or spdystream missing); built once per process.</summary>
    public static (string? Path, string? Why) SpdyClientBuild => GoClient.Value;

    /// <summary>The built Go client; skips the test with the reason when Go or spdystream is missing.</summary>
    public static string SpdyClient()
    {
        var (path, why) = GoClient.Value;
        Assert.SkipWhen(path is null, why ?? "no Go client");
        return path!;
    }

    public static void RequirePythonClient() =>
        Assert.SkipUnless(File.Exists(Python) && System.IO.Directory.Exists("/usr/lib/python3/dist-packages/kubernetes/stream"),
            "Debian's python3-kubernetes is not installed (scripts/install-deps.sh --test installs it)");

    private static (string?, string?) BuildGoClient()
    {
        if (!System.IO.Directory.Exists(SpdystreamSource))
        {
            return (null, $"{SpdystreamSource} is missing: golang-github-docker-spdystream-dev is not installed (scripts/install-deps.sh --test)");
        }

        var output = Path.Combine(Path.GetTempPath(), $"nacelle-spdyclient-{Environment.ProcessId}");
        var info = new ProcessStartInfo("go") { WorkingDirectory = Path.Combine(Directory, "spdyclient") };
        foreach (var argument in new[] { "build", "-o", output, "." })
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in ToolHome.GoEnvironment())
        {
            info.Environment[key] = value;
        }

        try
        {
            var (exit, stdout, stderr) = Run(info, TimeSpan.FromMinutes(5));
            AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(output);
            return exit == 0 ? (output, null) : throw new InvalidOperationException($"go build failed ({exit}): {stdout}{stderr}");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (null, "go is not installed (golang-go; scripts/install-deps.sh --test)");
        }
    }

    /// <summary>Runs a program to completion (or kills it after <paramref name="timeout"/>), feeding it
    /// <paramref name="stdin"/>.</summary>
    public static (int Exit, string Stdout, string Stderr) Run(ProcessStartInfo info, TimeSpan timeout, string? stdin = null)
    {
        info.RedirectStandardInput = info.RedirectStandardOutput = info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }

        process.StandardInput.Close();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, stdout.Result, "timed out: " + stderr.Result);
        }

        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public static ProcessStartInfo Program(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }
}

/// <summary>key=value lines the Go client writes to its info file.</summary>
public sealed class GoInfo(IReadOnlyList<string> lines)
{
    public static GoInfo Read(string path) => new(File.Exists(path) ? File.ReadAllLines(path) : []);

    public IReadOnlyList<string> Lines => lines;

    public string? this[string key] => lines.FirstOrDefault(l => l.StartsWith(key + "=", StringComparison.Ordinal)) is { } line
        ? Unquote(line[(key.Length + 1)..])
        : null;

    private static string Unquote(string value) =>
        value.Length >= 2 && value[0] == '"' ? System.Text.Json.JsonSerializer.Deserialize<string>(value) ?? value : value;

    public override string ToString() => string.Join(" | ", lines);
}
