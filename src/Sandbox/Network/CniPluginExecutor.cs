using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Nacelle.Common;

namespace Nacelle.Sandbox.Network;

/// <summary>The CNI verbs.</summary>
public static class CniCommand
{
    public const string Add = "ADD";
    public const string Del = "DEL";
    public const string Check = "CHECK";
    public const string Status = "STATUS";
    public const string Version = "VERSION";
}

/// <summary>
/// Runs plugin executables: finds them in the bin dirs, passes the CNI_* environment and the config on stdin, kills them
/// when they overrun the timeout, and turns a failure (exit code, error JSON on stdout) into a <see cref="NacelleException"/>.
/// </summary>
public sealed class CniPluginExecutor
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private const int MaxStderrInMessage = 512;

    private readonly ILogger _logger;

    public CniPluginExecutor(IReadOnlyList<string> binDirs, TimeSpan timeout, ILogger? logger = null)
    {
        if (timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), "the plugin timeout must be positive");
        }

        BinDirs = binDirs;
        Timeout = timeout;
        _logger = logger ?? NullLogger.Instance;
    }

    public IReadOnlyList<string> BinDirs { get; }

    public TimeSpan Timeout { get; }

    /// <summary>The executable of plugin <paramref name="type"/> in the first bin dir that has it, or null.</summary>
    public string? FindPlugin(string type)
    {
        foreach (var dir in BinDirs)
        {
            var path = Path.Combine(dir, type);
            try
            {
                if (File.Exists(path)
                    && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                {
                    return path;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // unreadable: try the next directory
            }
        }

        return null;
    }

    /// <summary>
    /// Runs <paramref name="type"/> with <paramref name="command"/> and returns its stdout. <paramref name="runtime"/> is
    /// null for verbs without a container (STATUS, VERSION).
    /// </summary>
    public async Task<string> ExecAsync(string network, string type, string command, CniRuntimeConf? runtime, string stdin, CancellationToken cancellationToken)
    {
        var path = FindPlugin(type) ?? throw NacelleException.FailedPrecondition(
            $"CNI plugin {type} of network {network} not found in {string.Join(", ", BinDirs)}");

        var info = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = Utf8,
            StandardOutputEncoding = Utf8,
            StandardErrorEncoding = Utf8,
            WorkingDirectory = "/",
        };
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("CNI_", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }

        info.Environment["CNI_COMMAND"] = command;
        info.Environment["CNI_PATH"] = string.Join(':', BinDirs);
        if (runtime is not null)
        {
            info.Environment["CNI_CONTAINERID"] = runtime.ContainerId;
            info.Environment["CNI_NETNS"] = runtime.NetnsPath;
            info.Environment["CNI_IFNAME"] = runtime.IfName;
            info.Environment["CNI_ARGS"] = runtime.ArgsString;
        }

        var started = Stopwatch.GetTimestamp();
        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            throw NacelleException.FailedPrecondition($"CNI plugin {type} of network {network}: cannot run {path}: {e.Message}");
        }

        var stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            try
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), linked.Token);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // the plugin exited without reading its stdin; its exit status tells what happened
            }

            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            if (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException($"CNI {command} {type} cancelled", null, cancellationToken);
            }

            Log.PluginTimedOut(_logger, type, command, (long)Timeout.TotalMilliseconds);
            throw new NacelleException(ErrorKind.DeadlineExceeded,
                $"CNI plugin {type} {command} of network {network} timed out after {Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s and was killed");
        }

        var stdout = await WithBound(stdoutTask);
        var stderr = await WithBound(stderrTask);
        Log.PluginRan(_logger, command, type, runtime?.ContainerId ?? "", runtime?.IfName ?? "",
            (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        if (process.ExitCode != 0)
        {
            throw PluginError(network, type, command, process.ExitCode, stdout, stderr);
        }

        return stdout;
    }

    /// <summary>The exception for a failed plugin: its error JSON (<c>code</c>, <c>msg</c>, <c>details</c>) or its stderr.</summary>
    internal static NacelleException PluginError(string network, string type, string command, int exitCode, string stdout, string stderr)
    {
        int? code = null;
        string? msg = null;
        string? details = null;
        try
        {
            if (JsonNode.Parse(stdout) is JsonObject error)
            {
                if (error["code"] is JsonValue c && c.TryGetValue<int>(out var n))
                {
                    code = n;
                }

                msg = error["msg"] is JsonValue m && m.TryGetValue<string>(out var s) ? s : null;
                details = error["details"] is JsonValue d && d.TryGetValue<string>(out var t) && t.Length > 0 ? t : null;
            }
        }
        catch (JsonException)
        {
        }

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"CNI plugin {type} {command} failed for network {network}: ");
        if (msg is not null || code is not null)
        {
            text.Append(msg ?? "(no message)");
            if (details is not null)
            {
                text.Append(": ").Append(details);
            }

            if (code is not null)
            {
                text.Append(CultureInfo.InvariantCulture, $" (code {code})");
            }
        }
        else
        {
            var err = stderr.Trim();
            if (err.Length == 0)
            {
                err = stdout.Trim();
            }

            if (err.Length > MaxStderrInMessage)
            {
                err = err[..MaxStderrInMessage] + "...";
            }

            text.Append(CultureInfo.InvariantCulture, $"exit status {exitCode}");
            if (err.Length > 0)
            {
                text.Append(": ").Append(err);
            }
        }

        return new NacelleException(KindOf(code), text.ToString());
    }

    /// <summary>Maps the spec's well-known error codes to error kinds.</summary>
    internal static ErrorKind KindOf(int? code) => code switch
    {
        1 or 7 => ErrorKind.FailedPrecondition, // incompatible version, invalid network config
        2 or 4 or 6 => ErrorKind.InvalidArgument, // unsupported field, invalid env, decoding failure
        3 => ErrorKind.NotFound, // unknown container
        5 => ErrorKind.Internal, // I/O failure
        _ => ErrorKind.Unavailable, // 11 try again later, 50/51 not available, plugin-specific codes
    };

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }

        process.WaitForExit(5000);
    }

    private static async Task<string> WithBound(Task<string> read)
    {
        // a plugin's grandchild may keep the pipe open after the plugin exits; don't hang on it
        var done = await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(5)));
        return done == read ? await read : "";
    }
}
