using System.Diagnostics;
using System.Text;

namespace Nacelle.Bench.Cri;

/// <summary>What a finished program printed.</summary>
internal sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs helper programs (ip, runc, CNI plugins) with their output captured.</summary>
internal static class Processes
{
    /// <summary>
    /// Runs <paramref name="file"/> to its exit. Non-zero exits throw with what it printed, unless <paramref name="check"/>
    /// is false. With <paramref name="detached"/> (runc run -d, runc create) the call returns at the program's exit without
    /// waiting for its output to end: the container it left behind inherited the pipes and holds them until it dies.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> arguments, string? stdin = null,
        IReadOnlyDictionary<string, string>? environment = null, bool check = true, bool detached = false)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
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
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(); // the program this call started, nothing else
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} did not exit within 60 s");
        }

        var failed = process.ExitCode != 0;
        if (detached && !failed)
        {
            return new ProcessResult(0, string.Empty, string.Empty);
        }

        var result = new ProcessResult(process.ExitCode, await stdout, await stderr);
        if (check && failed)
        {
            var text = new StringBuilder($"{file} {string.Join(' ', info.ArgumentList)} exited with {process.ExitCode}");
            text.Append(": ").Append(result.Stderr.Trim()).Append(' ').Append(result.Stdout.Trim());
            throw new InvalidOperationException(text.ToString());
        }

        return result;
    }
}
