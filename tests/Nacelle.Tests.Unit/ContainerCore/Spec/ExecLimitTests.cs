using Nacelle.Common;
using Nacelle.ContainerCore.Spec;

namespace Nacelle.Tests.Unit.ContainerCore.Spec;

/// <summary>
/// Regression (found by hostile probes): argv and env were silently cut to 4096 entries by the spawn helper. Now every
/// string reaches execve, or the process is refused naming the field and the limit.
/// </summary>
public sealed class ExecLimitTests
{
    private static SpecProcess Process(int args, int env = 0, int argBytes = 1, ulong? stack = null) => new()
    {
        Args = [.. Enumerable.Range(0, args).Select(i => i == 0 ? "/bin/true" : new string('a', argBytes))],
        Env = [.. Enumerable.Range(0, env).Select(i => $"V{i}=x")],
        Cwd = "/",
        Rlimits = stack is { } s ? [new SpecRlimit { Type = "RLIMIT_STACK", Soft = s, Hard = s }] : [],
    };

    private static NacelleException Refused(SpecProcess process)
    {
        var e = Assert.Throws<NacelleException>(() => SpecValidator.ValidateProcess(process));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        return e;
    }

    [Fact]
    public void More_strings_than_the_old_4096_pass_when_the_kernel_takes_them()
    {
        SpecValidator.ValidateProcess(Process(20_000, env: 20_000));
        SpecValidator.ValidateProcess(Process(SpecValidator.MaxExecStrings, stack: 64UL << 20));
    }

    [Fact]
    public void Too_many_strings_are_refused_naming_the_field_and_the_limit()
    {
        var e = Refused(Process(200_000, stack: 64UL << 20));
        Assert.Contains("process.args: has 200000 entries", e.Message, StringComparison.Ordinal);
        Assert.Contains("131072", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_string_over_MAX_ARG_STRLEN_is_refused_naming_it()
    {
        var e = Refused(Process(2, argBytes: 200_000));
        Assert.Contains("process.args[1]", e.Message, StringComparison.Ordinal);
        Assert.Contains("MAX_ARG_STRLEN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Argv_and_env_over_a_quarter_of_the_stack_limit_are_refused_and_a_bigger_stack_admits_them()
    {
        // 40 strings of 100 KiB: about 4 MiB, over 8 MiB / 4 but under 24 MiB / 4.
        var big = Process(40, argBytes: 100 << 10);
        var e = Refused(big);
        Assert.Contains("execve limit of 2097152 bytes", e.Message, StringComparison.Ordinal);
        SpecValidator.ValidateProcess(Process(40, argBytes: 100 << 10, stack: 24UL << 20));
    }

    [Theory]
    [InlineData(null, 2L << 20)]
    [InlineData(256UL << 10, 128L << 10)]        // never below ARG_MAX
    [InlineData(ulong.MaxValue, 6L << 20)]       // unlimited stack: three quarters of _STK_LIM
    public void The_execve_limit_follows_the_kernels_rule(ulong? stack, long expected) =>
        Assert.Equal(expected, SpecValidator.ExecveLimit(Process(1, stack: stack)));
}
