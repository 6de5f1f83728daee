using System.Text.RegularExpressions;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Deploy;

/// <summary>
/// A fresh bookworm machine gets everything the tests run from scripts/install-deps.sh: every program the tests (C#
/// process launches under tests/) and the scripts (commands in scripts/*.sh) run is mapped to the Debian package that
/// owns it on this machine (dpkg -S), and that package must be one install-deps.sh installs, a dependency of one, or
/// part of every bookworm installation (Essential or Priority: required).
/// </summary>
public sealed partial class InstallDepsTests
{
    // Not Debian packages: the .NET SDK is a documented prerequisite; nacelle is the program under test.
    private static readonly HashSet<string> NotFromDebian = ["dotnet", "nacelle", "/usr/bin/nacelle"];

    // C#: a process launch (TestProcesses.Run, a scope's Run/Start, ProcessStartInfo, Process.Start) and its arguments.
    [GeneratedRegex(@"\b(?:Run|Start|ProcessStartInfo|Process\.Start)\((?<args>[^;]*)")]
    private static partial Regex Launch();

    [GeneratedRegex("\"(?<s>(?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"^/(?:usr/)?s?bin/[A-Za-z0-9._+-]+$")]
    private static partial Regex HostProgramPath();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._+-]*$")]
    private static partial Regex ProgramName();

    [GeneratedRegex(@"(?:const|static readonly) string (?<name>\w+) = ""(?<value>[^""]+)"";")]
    private static partial Regex StringConstant();

    [GeneratedRegex(@"^\s*(?:function\s+)?(?<name>[A-Za-z_][\w-]*)\s*\(\)", RegexOptions.Multiline)]
    private static partial Regex ShellFunction();

    // $(( ... )), with one level of parentheses (or a command substitution) inside.
    [GeneratedRegex(@"\$\(\((?:[^()]|\$?\([^()]*\))*\)\)")]
    private static partial Regex Arithmetic();

    // name=( ... ) and name+=( ... ): array elements are words, not commands.
    [GeneratedRegex(@"\b[A-Za-z_]\w*\+?=\([^)]*\)")]
    private static partial Regex ArrayAssignment();

    [GeneratedRegex(@"packages\+?=\((?<list>[^)]*)\)")]
    private static partial Regex PackageArray();

    /// <summary>Programs the C# tests start: the program of every launch, and the host programs it hands on (nsenter ... /bin/busybox).</summary>
    internal static IEnumerable<(string Program, string Where)> ProgramsOfTests()
    {
        var files = Directory.EnumerateFiles(SourceTree.PathOf("tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .ToList();
        var constants = files.SelectMany(f => StringConstant().Matches(File.ReadAllText(f)))
            .GroupBy(m => m.Groups["name"].Value).ToDictionary(g => g.Key, g => g.First().Groups["value"].Value);
        foreach (var file in files)
        {
            var where = Path.GetRelativePath(SourceTree.Root, file);
            foreach (Match launch in Launch().Matches(File.ReadAllText(file)))
            {
                var args = launch.Groups["args"].Value;
                // The program: the first string argument, or a constant naming one (after an optional timeout and an
                // optional environment, TestProcesses.Run(timeout, environment, file, ...)).
                var first = args.Split(',', 4).Select(a => a.Trim()).FirstOrDefault(a => !a.StartsWith("Slow", StringComparison.Ordinal)
                    && !a.StartsWith("TimeSpan", StringComparison.Ordinal) && a != "environment") ?? string.Empty;
                var program = StringLiteral().Match(first) is { Success: true } literal && first.StartsWith('"')
                    ? literal.Groups["s"].Value
                    : constants.GetValueOrDefault(Regex.Match(first, @"^[\w.]+").Value.Split('.').Last());
                if (program is not null && (ProgramName().IsMatch(program) || HostProgramPath().IsMatch(program)))
                {
                    yield return (program, where);
                }

                foreach (Match argument in StringLiteral().Matches(args).Skip(1))
                {
                    if (HostProgramPath().IsMatch(argument.Groups["s"].Value))
                    {
                        yield return (argument.Groups["s"].Value, where);
                    }
                }
            }
        }
    }

    /// <summary>Commands the scripts run: the first word of every simple command that is not a builtin, keyword or function.</summary>
    internal static IEnumerable<(string Program, string Where)> ProgramsOfScripts()
    {
        var builtins = TestProcesses.Run("/bin/bash", "-c", "compgen -b; compgen -k").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(SourceTree.PathOf("scripts"), "*.sh"))
        {
            var text = File.ReadAllText(file);
            var functions = ShellFunction().Matches(text).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
            var where = Path.GetRelativePath(SourceTree.Root, file);
            foreach (var line in text.Split('\n').Select(CodeOf))
            {
                foreach (var command in line.Split(["&&", "||", "|", ";", "$(", "`", "(", ")", "{", "}"], StringSplitOptions.None))
                {
                    var words = command.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();
                    // Assignments and prefixes that run the next word.
                    while (words.Count > 0 && (Regex.IsMatch(words[0], @"^[A-Za-z_]\w*\+?=") || words[0] is "exec" or "!" or "then" or "do" or "else" or "elif" or "if" or "while" or "until" or "time"))
                    {
                        words.RemoveAt(0);
                    }

                    if (words.Count > 0 && words[0] == "xargs")
                    {
                        words = [.. words.Skip(1).SkipWhile(w => w.StartsWith('-'))];
                    }

                    if (words.Count == 0 || words[0] is "case" or "for" or "in" or "command" or "[[" or "[" or "]]" or "esac" or "fi" or "done")
                    {
                        continue; // `command -v X` asks whether X exists; it does not run it
                    }

                    var word = words[0].Trim('"', '\'');
                    if (ProgramName().IsMatch(word) && !builtins.Contains(word) && !functions.Contains(word))
                    {
                        yield return (word, where);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The parts of a shell line that run: comments, single-quoted text (awk programs, format strings) and double-quoted
    /// text are dropped, except command substitutions inside double quotes ("$(nacelle version)"), which are kept.
    /// </summary>
    private static string CodeOf(string line)
    {
        line = ArrayAssignment().Replace(Arithmetic().Replace(line, "\"\""), "\"\"");
        var code = new System.Text.StringBuilder();
        var quote = '\0';
        var depth = 0; // nesting of $( ) inside double quotes
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote == '\'')
            {
                quote = c == '\'' ? '\0' : quote;
            }
            else if (quote == '"' && depth == 0)
            {
                if (c == '"')
                {
                    quote = '\0';
                }
                else if (c == '$' && i + 1 < line.Length && line[i + 1] == '(')
                {
                    depth = 1;
                    code.Append(" $(");
                    i++;
                }
            }
            else if (c == '#' && quote == '\0' && (i == 0 || char.IsWhiteSpace(line[i - 1])))
            {
                break;
            }
            else if (c is '\'' or '"' && quote == '\0')
            {
                // The quoted text keeps its place as a word that names no program ("$bin/nacelle" version).
                quote = c;
                code.Append(" \"\" ");
            }
            else
            {
                if (depth > 0)
                {
                    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
                }

                code.Append(c);
            }
        }

        return code.ToString();
    }

    /// <summary>Every package scripts/install-deps.sh names (both lists).</summary>
    internal static HashSet<string> InstallDepsPackages() =>
        PackageArray().Matches(File.ReadAllText(SourceTree.PathOf("scripts", "install-deps.sh")))
            .SelectMany(m => m.Groups["list"].Value.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .ToHashSet(StringComparer.Ordinal);

    private static string? Query(string format, string package) =>
        TestProcesses.Run("dpkg-query", "-W", $"-f={format}", package) is { Exit: 0 } r ? r.Stdout : null;

    /// <summary>The packages, with everything they depend on that is installed here (alternatives included).</summary>
    private static HashSet<string> Closure(IEnumerable<string> packages)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>(packages);
        while (queue.TryDequeue(out var package))
        {
            if (!seen.Add(package) || Query("${Depends}, ${Pre-Depends}", package) is not { } depends)
            {
                continue;
            }

            foreach (var alternative in depends.Split([',', '|'], StringSplitOptions.RemoveEmptyEntries))
            {
                var name = alternative.Trim().Split(' ', ':')[0];
                if (name.Length > 0)
                {
                    queue.Enqueue(name);
                }
            }
        }

        return seen;
    }

    /// <summary>The package owning <paramref name="program"/> here, or why there is none.</summary>
    private static (string? Package, string? Problem) PackageOf(string program)
    {
        var path = program.StartsWith('/')
            ? program
            : TestProcesses.Run("/bin/bash", "-c", $"command -v -- '{program}'").Stdout.Trim();
        if (path.Length == 0 || !File.Exists(path))
        {
            return (null, "is not installed on this machine");
        }

        // Merged /usr: dpkg knows a file under the name its package ships it with.
        var real = Path.GetFullPath(new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path);
        string[] candidates = [path, path.StartsWith("/usr/", StringComparison.Ordinal) ? path[4..] : "/usr" + path, real];
        foreach (var candidate in candidates.Distinct())
        {
            var owner = TestProcesses.Run("dpkg-query", "-S", candidate);
            // "diversion by dash from: /bin/sh" lines come first; the owner is on the "<package>: <path>" line.
            var line = owner.Stdout.Split('\n').FirstOrDefault(l => l.Contains(": ", StringComparison.Ordinal) && !l.StartsWith("diversion ", StringComparison.Ordinal));
            if (owner.Exit == 0 && line is not null)
            {
                return (line.Split(':', 2)[0].Split(',')[0].Trim(), null);
            }
        }

        return (null, $"({path}) belongs to no Debian package");
    }

    [Fact]
    public void TheScannersSeeTheProgramsTheTestsAndScriptsRun()
    {
        // The scan must find what is known to be run, or the check below proves nothing.
        var tests = ProgramsOfTests().Select(p => p.Program).ToHashSet();
        Assert.Empty(new[] { "iptables", "ip", "nsenter", "mount", "dpkg", "lintian", "/usr/bin/docker-registry", "/usr/bin/htpasswd",
            "/usr/bin/zstd", "/bin/busybox", "/usr/bin/setpriv", "/usr/bin/go" }.Except(tests));
        Assert.DoesNotContain("/bin/cmd", tests); // a path inside a test container, not a host program
        var scripts = ProgramsOfScripts().Select(p => p.Program).ToHashSet();
        Assert.Empty(new[] { "apt-get", "dpkg-query", "dotnet", "dpkg-shlibdeps", "dpkg-deb", "strip", "objcopy", "gzip", "md5sum", "sed",
            "awk" }.Except(scripts));
        Assert.DoesNotContain("echo", scripts); // a builtin
        Assert.DoesNotContain("Status", scripts); // quoted text
        Assert.Contains("lintian", InstallDepsPackages());
    }

    [Fact]
    public void EveryProgramTheTestsAndScriptsRunIsInstalledByInstallDeps()
    {
        Assert.SkipUnless(File.Exists("/usr/bin/dpkg-query"), "needs dpkg (a Debian machine)");
        var listed = InstallDepsPackages();
        var installed = Closure(listed);
        var problems = new List<string>();
        foreach (var group in ProgramsOfTests().Concat(ProgramsOfScripts()).GroupBy(p => p.Program).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            if (NotFromDebian.Contains(group.Key))
            {
                continue;
            }

            var where = string.Join(", ", group.Select(p => p.Where).Distinct().Take(3));
            var (package, problem) = PackageOf(group.Key);
            if (package is null)
            {
                problems.Add($"{group.Key} {problem} (run by {where})");
                continue;
            }

            var basics = Query("${Essential} ${Priority}", package) ?? string.Empty;
            if (!installed.Contains(package) && !basics.StartsWith("yes", StringComparison.Ordinal) && !basics.EndsWith("required", StringComparison.Ordinal))
            {
                problems.Add($"{group.Key} comes from {package}, which scripts/install-deps.sh does not install (run by {where})");
            }
        }

        Assert.True(problems.Count == 0, "add these to scripts/install-deps.sh:\n" + string.Join('\n', problems));
    }
}
