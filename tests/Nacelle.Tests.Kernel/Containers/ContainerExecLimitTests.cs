using Nacelle.Common;

namespace Nacelle.Tests.Kernel.Containers;

/// <summary>
/// Regression (found by hostile probes): the spawn helper silently kept only the first 4096 argv and env strings.
/// Every string now reaches the program, or the spec is refused naming the limit before anything is created.
/// </summary>
public sealed class ContainerExecLimitTests
{
    [Fact]
    public async Task Twenty_thousand_arguments_and_variables_all_reach_the_program()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("echo \"args=$#\"; echo \"last=$(eval echo \\${$#})\"; echo \"vars=$(env | grep -c '^NACELLE_V')\"");
        spec.Process!.Args = [.. spec.Process.Args, "sh", .. Enumerable.Range(1, 20_000).Select(i => $"a{i}")];
        spec.Process.Env = [.. spec.Process.Env, .. Enumerable.Range(1, 20_000).Select(i => $"NACELLE_V{i}=v")];

        var seen = await scope.ProbeAsync(spec);
        Assert.Equal("20000", seen["args"]);
        Assert.Equal("a20000", seen["last"]);
        Assert.Equal("20000", seen["vars"]);
    }

    [Fact]
    public async Task Too_many_arguments_are_refused_before_anything_exists()
    {
        Assert.True(ContainerTestScope.Available, "kernel tests run as root with /bin/busybox");
        await using var scope = new ContainerTestScope();
        var spec = scope.Spec("true");
        spec.Process!.Args = [.. spec.Process.Args, .. Enumerable.Repeat("x", 200_000)];
        var e = await Assert.ThrowsAsync<NacelleException>(() => scope.RunAsync(spec));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("131072", e.Message, StringComparison.Ordinal);
        Assert.Empty(scope.Runtime.List());
    }
}
