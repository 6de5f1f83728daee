using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Nacelle.ContainerCore.Interop;
using Runtime.V1;

// Usage: Nacelle.Bench.Startup --runs N --variant NAME=COMMAND [--variant NAME=COMMAND ...]
// COMMAND is split on spaces; the first variant is the one measured, every variant is compared with the last
// (the reference). For each run: exec the daemon on a fresh socket, poll until Version answers (start time),
// make 100 Version calls, let it idle 1 s, read VmRSS, SIGTERM it.
var runs = 10;
var variants = new List<(string Name, string[] Command)>();
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--runs":
            runs = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--variant":
            var spec = args[++i];
            var eq = spec.IndexOf('=');
            variants.Add((spec[..eq], spec[(eq + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

if (variants.Count == 0)
{
    Console.Error.WriteLine("give at least one --variant NAME=COMMAND");
    return 2;
}

var results = new Dictionary<string, (List<double> StartMs, List<double> RssMb)>();
for (var run = 0; run < runs; run++)
{
    // Interleave variants so drift in machine load hits all of them alike.
    foreach (var (name, command) in variants)
    {
        var (startMs, rssMb) = await MeasureOnce(command);
        if (!results.TryGetValue(name, out var series))
        {
            results[name] = series = ([], []);
        }

        series.StartMs.Add(startMs);
        series.RssMb.Add(rssMb);
        Console.Error.WriteLine($"run {run + 1}/{runs} {name}: start {startMs:F1} ms, idle RSS {rssMb:F1} MB");
    }
}

var reference = variants[^1].Name;
var refStart = Median(results[reference].StartMs);
var refRss = Median(results[reference].RssMb);
Console.WriteLine();
Console.WriteLine($"nacelle startup, {runs} runs each, {Environment.ProcessorCount} cores; reference: {reference}");
Console.WriteLine();
Console.WriteLine("| variant | exec->Version median ms | p90 ms | vs ref | idle RSS median MB | p90 MB | vs ref |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
foreach (var (name, _) in variants)
{
    var (start, rss) = results[name];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {Median(start):F1} | {P90(start):F1} | {Median(start) / refStart:F2}x | {Median(rss):F1} | {P90(rss):F1} | {Median(rss) / refRss:F2}x |"));
}

return 0;

static async Task<(double StartMs, double RssMb)> MeasureOnce(string[] command)
{
    var dir = Directory.CreateTempSubdirectory("nacelle-bench-").FullName;
    var socket = Path.Combine(dir, "nacelle.sock");
    var config = Path.Combine(dir, "config.toml");
    await File.WriteAllTextAsync(config, "[metrics]\nenabled = false\n");

    var info = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
    foreach (var arg in command.Skip(1).Concat(["--config", config, "--socket", socket, "--root", Path.Combine(dir, "root"),
                 "--state", Path.Combine(dir, "state"), "--log-level", "warn"]))
    {
        info.ArgumentList.Add(arg);
    }

    using var channel = CriChannel.ForUnixSocket(socket);
    var client = new RuntimeService.RuntimeServiceClient(channel);
    var clock = Stopwatch.StartNew();
    using var process = Process.Start(info)!;
    process.BeginErrorReadLine();
    process.BeginOutputReadLine();
    try
    {
        double startMs;
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{command[0]} exited with {process.ExitCode}");
            }

            if (File.Exists(socket))
            {
                try
                {
                    await client.VersionAsync(new VersionRequest());
                    startMs = clock.Elapsed.TotalMilliseconds;
                    break;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
                {
                }
            }

            await Task.Delay(1);
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("daemon did not answer Version within 60 s");
            }
        }

        for (var i = 0; i < 100; i++)
        {
            await client.VersionAsync(new VersionRequest());
        }

        await Task.Delay(1000);
        var rssKb = File.ReadLines($"/proc/{process.Id}/status")
            .Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture))
            .Single();
        return (startMs, rssKb / 1024);
    }
    finally
    {
        Signals.Send(process.Id, Signals.SIGTERM);
        if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            Signals.Send(process.Id, Signals.SIGKILL);
            process.WaitForExit();
        }

        Directory.Delete(dir, recursive: true);
    }
}

static double Median(List<double> values) => Percentile(values, 0.5);

static double P90(List<double> values) => Percentile(values, 0.9);

static double Percentile(List<double> values, double p)
{
    var sorted = values.Order().ToArray();
    var rank = p * (sorted.Length - 1);
    var low = (int)Math.Floor(rank);
    var high = (int)Math.Ceiling(rank);
    return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
}
