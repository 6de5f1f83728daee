using System.Text;
using Nacelle.Common;
using Nacelle.CriServer.Streaming;
using Nacelle.Sandbox.Streams;
using Runtime.V1;

namespace Nacelle.Tests.Unit.Streaming;

/// <summary>What the rpcs check before handing out a URL, the tokens and limits behind URLs, protocol negotiation,
/// and how an outcome reads on the error stream.</summary>
public sealed class StreamRequestTests
{
    private static readonly StreamContainer Running = new("c1", "p1", Running: true, "running", Tty: true, Stdin: true);

    private static NacelleException Refused(Action action) => Assert.Throws<NacelleException>(action);

    [Fact]
    public void ExecNeedsACommandAStreamNoStderrWithATerminalAndARunningContainer()
    {
        var exec = StreamRequests.Exec(new ExecRequest { ContainerId = "c1", Cmd = { "sh", "-c", "true" }, Stdout = true, Tty = true }, Running);
        Assert.Equal(new ExecStream("c1", "p1", ["sh", "-c", "true"], false, true, false, true) with { Command = exec.Command }, exec);
        Assert.Equal(["sh", "-c", "true"], exec.Command);

        Assert.Contains("cmd is empty", Refused(() => StreamRequests.Exec(new ExecRequest { Stdout = true }, Running)).Message);
        var e = Refused(() => StreamRequests.Exec(new ExecRequest { Cmd = { "sh" }, Tty = true, Stderr = true }, Running));
        Assert.Equal((ErrorKind.InvalidArgument, true), (e.Kind, e.Message.Contains("tty and stderr", StringComparison.Ordinal)));
        Assert.Contains("one of stdin, stdout or stderr", Refused(() => StreamRequests.Exec(new ExecRequest { Cmd = { "sh" } }, Running)).Message);
        e = Refused(() => StreamRequests.Exec(new ExecRequest { Cmd = { "sh" }, Stdout = true }, Running with { Running = false, State = "exited" }));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("container c1 is exited", e.Message);
    }

    [Fact]
    public void AttachNeedsTheStdinAndTerminalTheContainerWasCreatedWith()
    {
        Assert.Equal(new AttachStream("c1", "p1", true, true, false, true),
            StreamRequests.Attach(new AttachRequest { ContainerId = "c1", Stdin = true, Stdout = true, Tty = true }, Running));
        var plain = Running with { Tty = false, Stdin = false };
        Assert.Contains("without stdin", Refused(() => StreamRequests.Attach(new AttachRequest { Stdin = true, Stdout = true }, plain)).Message);
        Assert.Contains("has no terminal", Refused(() => StreamRequests.Attach(new AttachRequest { Stdout = true, Tty = true }, plain)).Message);
        Assert.Equal(ErrorKind.InvalidArgument, Refused(() => StreamRequests.Attach(new AttachRequest { Stderr = true, Tty = true }, Running)).Kind);
        // Output only of a terminal container is fine.
        Assert.False(StreamRequests.Attach(new AttachRequest { Stdout = true }, Running).Tty);
    }

    [Fact]
    public void PortForwardNeedsAReadyPodAndRealPorts()
    {
        Assert.Equal([80, 8080], StreamRequests.PortForward(new PortForwardRequest { PodSandboxId = "p1", Port = { 80, 8080, 80 } }, new StreamPod("p1", true)).Ports);
        Assert.Empty(StreamRequests.PortForward(new PortForwardRequest { PodSandboxId = "p1" }, new StreamPod("p1", true)).Ports);
        Assert.Contains("port 0 is not", Refused(() => StreamRequests.PortForward(new PortForwardRequest { Port = { 0 } }, new StreamPod("p1", true))).Message);
        Assert.Contains("65536", Refused(() => StreamRequests.PortForward(new PortForwardRequest { Port = { 65536 } }, new StreamPod("p1", true))).Message);
        Assert.Equal(ErrorKind.FailedPrecondition, Refused(() => StreamRequests.PortForward(new PortForwardRequest(), new StreamPod("p1", false))).Kind);
    }

    [Fact]
    public void ATokenIsLongRandomAndUsableOnce()
    {
        var time = new ManualTime();
        var tokens = new StreamTokens(TimeSpan.FromMinutes(1), 100, time);
        var request = new PortForwardStream("p1", []);
        var token = tokens.Add(request);
        Assert.Equal(43, token.Length); // 256 bits in base64url without padding
        Assert.DoesNotContain(token, c => c is '+' or '/' or '=');
        Assert.NotEqual(token, tokens.Add(request));

        Assert.Same(request, tokens.Take(token));
        Assert.Null(tokens.Take(token));
        Assert.Null(tokens.Take("unknown"));
    }

    [Fact]
    public void AnUnusedTokenExpiresAfterItsLifetime()
    {
        var time = new ManualTime();
        var tokens = new StreamTokens(TimeSpan.FromMinutes(1), 100, time);
        var early = tokens.Add(new PortForwardStream("p1", []));
        var late = tokens.Add(new PortForwardStream("p1", []));
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(tokens.Take(early));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(tokens.Take(late));
    }

    [Fact]
    public void OutstandingTokensAreBoundedAndExpiredOnesMakeRoom()
    {
        var time = new ManualTime();
        var tokens = new StreamTokens(TimeSpan.FromMinutes(1), 2, time);
        tokens.Add(new PortForwardStream("p1", []));
        tokens.Add(new PortForwardStream("p1", []));
        Assert.Equal(ErrorKind.ResourceExhausted, Refused(() => tokens.Add(new PortForwardStream("p1", []))).Kind);
        time.Advance(TimeSpan.FromMinutes(2));
        tokens.Add(new PortForwardStream("p1", []));
        Assert.Equal(1, tokens.Count);
    }

    [Fact]
    public void LimitsCountStreamsInTotalAndPerPod()
    {
        var limits = new StreamLimits(maxStreams: 3, maxStreamsPerPod: 2);
        var a1 = limits.TryAcquire("a", out _);
        var a2 = limits.TryAcquire("a", out _);
        Assert.Null(limits.TryAcquire("a", out var perPod));
        Assert.Contains("max_streams_per_pod = 2", perPod);
        var b1 = limits.TryAcquire("b", out _);
        Assert.Null(limits.TryAcquire("c", out var total));
        Assert.Contains("max_streams = 3", total);
        Assert.NotNull(limits.WouldRefuse("c"));

        a1!.Dispose();
        a1.Dispose(); // a lease is returned once
        Assert.Equal(2, limits.Open);
        Assert.Null(limits.WouldRefuse("c"));
        a2!.Dispose();
        b1!.Dispose();
        Assert.Equal(0, limits.Open);
    }

    [Theory]
    [InlineData(new[] { "v4.channel.k8s.io", "v3.channel.k8s.io" }, "v4.channel.k8s.io")]
    [InlineData(new[] { "channel.k8s.io", "v3.channel.k8s.io" }, "v3.channel.k8s.io")]
    [InlineData(new[] { "v2.channel.k8s.io,channel.k8s.io" }, "v2.channel.k8s.io")]
    [InlineData(new[] { "v5.channel.k8s.io" }, null)]
    [InlineData(new string[0], null)]
    public void SpdyNegotiationPicksTheNewestShared(string[] offered, string? expected) =>
        Assert.Equal(expected, StreamProtocols.Negotiate(offered, StreamProtocols.SpdyRemoteCommand));

    [Theory]
    [InlineData(new[] { "v4.channel.k8s.io", "v5.channel.k8s.io" }, "v5.channel.k8s.io")]
    [InlineData(new[] { "base64.channel.k8s.io", "v4.base64.channel.k8s.io" }, "v4.base64.channel.k8s.io")]
    [InlineData(new[] { "channel.k8s.io" }, "channel.k8s.io")]
    [InlineData(new[] { "v6.channel.k8s.io" }, null)]
    public void WebSocketNegotiationPicksTheNewestShared(string[] offered, string? expected) =>
        Assert.Equal(expected, StreamProtocols.Negotiate(offered, StreamProtocols.WebSocketRemoteCommand));

    [Fact]
    public void OutcomesReadAsKubeletWritesThem()
    {
        Assert.Equal("{\"metadata\":{},\"status\":\"Success\"}", Encoding.UTF8.GetString(CommandOutcome.Exited(0).ToStatusJson()));
        Assert.Empty(CommandOutcome.Success.ToText());
        Assert.Equal(
            "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit code: exit code 137\"," +
            "\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"137\"}]}}",
            Encoding.UTF8.GetString(CommandOutcome.Exited(137).ToStatusJson()));
        Assert.Equal("command terminated with non-zero exit code: exit code 3", Encoding.UTF8.GetString(CommandOutcome.Exited(3).ToText()));
        Assert.Equal(
            "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: no such file\"," +
            "\"reason\":\"InternalError\",\"details\":{\"causes\":[{\"message\":\"no such file\"}]},\"code\":500}",
            Encoding.UTF8.GetString(CommandOutcome.Failed("no such file").ToStatusJson()));
    }

    [Fact]
    public void ResizeObjectsAreReadFromAnySplitOfTheStream()
    {
        var text = "{\"Width\":100,\"Height\":30}\n{\"height\":5, \"width\":7, \"extra\":{\"a\":[1,\"}\"]}}\n";
        for (var split = 0; split <= text.Length; split++)
        {
            var decoder = new ResizeDecoder();
            var sizes = decoder.Feed(Encoding.UTF8.GetBytes(text[..split])).Concat(decoder.Feed(Encoding.UTF8.GetBytes(text[split..]))).ToList();
            Assert.Equal([new TerminalSize(100, 30), new TerminalSize(7, 5)], sizes);
        }
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("{\"Width\":-1}")]
    [InlineData("{\"Width\":70000}")]
    [InlineData("{\"Width\":\"80\"}")]
    [InlineData("{\"Width\":80,}")]
    public void InvalidResizeDataEndsTheResizeStream(string text) =>
        Assert.Throws<FormatException>(() => new ResizeDecoder().Feed(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void AResizeObjectMayNotGrowWithoutBound() =>
        Assert.Throws<FormatException>(() => new ResizeDecoder().Feed(Encoding.UTF8.GetBytes("{\"a\":\"" + new string('x', 5000))));

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
