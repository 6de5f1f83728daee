using System.Diagnostics;
using System.Text;
using Google.Protobuf;
using Grpc.Core;

namespace Nacelle.Tests.EndToEnd.Fuzzing;

/// <summary>
/// One generated request: where it goes, how it is sent, which answers are acceptable for it, and what an answer
/// changes in the fuzzer's model.
/// </summary>
internal sealed record FuzzCall
{
    public const string RuntimeService = "runtime.v1.RuntimeService";
    public const string ImageService = "runtime.v1.ImageService";

    /// <summary>The rpcs nacelle does not serve yet; they must answer Unimplemented, naming themselves, and nothing else.</summary>
    public static readonly IReadOnlySet<string> MayBeUnimplemented = new HashSet<string>(StringComparer.Ordinal)
    {
        "CheckpointContainer", "ListMetricDescriptors", "ListPodSandboxMetrics", "StreamPodSandboxMetrics",
        "UpdatePodSandboxResources", "Exec", "Attach", "PortForward",
    };

    public required string Service { get; init; }

    public required string Rpc { get; init; }

    /// <summary>The request (may hold <see cref="FuzzValues.InvalidUtf8Placeholder"/>); null with <see cref="Raw"/>.</summary>
    public IMessage? Request { get; init; }

    /// <summary>Bytes sent as they are instead of a message: malformed protobuf.</summary>
    public byte[]? Raw { get; init; }

    public required MessageParser Parser { get; init; }

    public bool ServerStreaming { get; init; }

    /// <summary>For a stream that does not end by itself (GetContainerEvents): listen this long, then cancel.</summary>
    public TimeSpan? ListenFor { get; init; }

    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>What the fuzzer did to the request, for the report ("valid", "log_path absolute"...).</summary>
    public required string What { get; init; }

    /// <summary>A well-formed request in a state where it must succeed.</summary>
    public bool ExpectOk { get; init; }

    /// <summary>When set, the answer must be one of these.</summary>
    public IReadOnlyList<StatusCode>? MustBe { get; init; }

    /// <summary>The request may legitimately outlive its deadline (a huge stop timeout, an exec without one).</summary>
    public bool MayHang { get; init; }

    /// <summary>The request depends on the world outside nacelle (a registry that does not answer).</summary>
    public bool MayBeUnavailable { get; init; }

    /// <summary>The bytes are not a valid message (or hold invalid UTF-8 in a string field): the protobuf parser refuses
    /// them before any of nacelle's code runs, and .NET's gRPC server answers that with Unknown ("Exception was thrown by
    /// handler."; gRPC itself documents Internal for a request that does not parse). Classified as the library's answer.</summary>
    public bool MalformedWire { get; init; }

    /// <summary>The request asks for a feature nacelle refuses as not supported (image volumes): Unimplemented is its answer.</summary>
    public bool MayBeUnsupported { get; init; }

    /// <summary>Whether the bytes sent hold invalid UTF-8 (made from the placeholder).</summary>
    public bool HasInvalidUtf8 => Raw is null && Request!.ToByteArray().AsSpan().IndexOf(Encoding.UTF8.GetBytes(FuzzValues.InvalidUtf8Placeholder)) >= 0;

    /// <summary>Applied to the model when the call answered OK (with the first response, or null for streams).</summary>
    public Action<IMessage?>? OnOk { get; init; }

    /// <summary>Applied when the call failed with a definite status.</summary>
    public Action<StatusCode>? OnError { get; init; }

    /// <summary>Applied when the outcome is unknown (deadline, cancel): the model must stop assuming.</summary>
    public Action? OnUnknown { get; init; }

    /// <summary>The pod the call is about, if any (the consistency check looks at it first).</summary>
    public FuzzPod? Pod { get; init; }

    public byte[] Bytes()
    {
        if (Raw is not null)
        {
            return Raw;
        }

        var bytes = Request!.ToByteArray();
        ReplacePlaceholders(bytes);
        return bytes;
    }

    /// <summary>Every copy of the placeholder's UTF-8 bytes becomes the invalid sequence of the same length.</summary>
    private static void ReplacePlaceholders(byte[] bytes)
    {
        var placeholder = Encoding.UTF8.GetBytes(FuzzValues.InvalidUtf8Placeholder);
        Debug.Assert(placeholder.Length == FuzzValues.InvalidUtf8.Length);
        var span = bytes.AsSpan();
        var at = 0;
        while (at < span.Length)
        {
            var found = span[at..].IndexOf(placeholder);
            if (found < 0)
            {
                break;
            }

            FuzzValues.InvalidUtf8.CopyTo(span[(at + found)..]);
            at += found + placeholder.Length;
        }
    }

    public override string ToString() => $"{Rpc} [{What}]";
}

/// <summary>How a call ended.</summary>
internal sealed record FuzzOutcome(StatusCode Code, string Detail, IReadOnlyList<IMessage> Responses, TimeSpan Elapsed, int RequestBytes)
{
    public bool Ok => Code == StatusCode.OK;

    public IMessage? First => Responses.Count > 0 ? Responses[0] : null;
}

/// <summary>Sends <see cref="FuzzCall"/>s as raw bytes over one channel (so invalid UTF-8 and malformed messages go out as made).</summary>
internal sealed class FuzzInvoker(CallInvoker invoker)
{
    private static readonly Marshaller<byte[]> Identity = Marshallers.Create(b => b, b => b);

    /// <summary>A stream is read up to this many messages, then cancelled (kubelet reads them all; a fuzzer need not).</summary>
    private const int MaxStreamMessages = 200;

    public async Task<FuzzOutcome> SendAsync(FuzzCall call)
    {
        var bytes = call.Bytes();
        var method = new Method<byte[], byte[]>(call.ServerStreaming ? MethodType.ServerStreaming : MethodType.Unary,
            call.Service, call.Rpc, Identity, Identity);
        var clock = Stopwatch.StartNew();
        using var listen = call.ListenFor is { } listenFor ? new CancellationTokenSource(listenFor) : new CancellationTokenSource();
        var options = new CallOptions(deadline: DateTime.UtcNow + call.Deadline, cancellationToken: listen.Token);
        var responses = new List<IMessage>();
        try
        {
            if (call.ServerStreaming)
            {
                using var stream = invoker.AsyncServerStreamingCall(method, null, options, bytes);
                while (responses.Count < MaxStreamMessages && await stream.ResponseStream.MoveNext(CancellationToken.None))
                {
                    responses.Add(call.Parser.ParseFrom(stream.ResponseStream.Current));
                }
            }
            else
            {
                responses.Add(call.Parser.ParseFrom(await invoker.AsyncUnaryCall(method, null, options, bytes)));
            }

            return new FuzzOutcome(StatusCode.OK, "", responses, clock.Elapsed, bytes.Length);
        }
        catch (RpcException e) when (call.ListenFor is not null && listen.IsCancellationRequested && e.StatusCode == StatusCode.Cancelled)
        {
            return new FuzzOutcome(StatusCode.OK, "listened, then cancelled", responses, clock.Elapsed, bytes.Length);
        }
        catch (RpcException e)
        {
            return new FuzzOutcome(e.StatusCode, e.Status.Detail, responses, clock.Elapsed, bytes.Length);
        }
    }

    /// <summary>What .NET's gRPC server answers (with Unknown) when a request does not parse, before any service code runs.</summary>
    public const string LibraryParseFailure = "Exception was thrown by handler.";

    /// <summary>Why an outcome is wrong for its call, or null when it is acceptable.</summary>
    public static string? Judge(FuzzCall call, FuzzOutcome outcome)
    {
        var code = outcome.Code;
        switch (code)
        {
            case StatusCode.Internal or StatusCode.Unknown when (call.MalformedWire || call.HasInvalidUtf8) && outcome.Detail == LibraryParseFailure:
                return null;
            case StatusCode.Internal or StatusCode.Unknown or StatusCode.DataLoss:
                return $"answered {code}: a caller's request must never be a server fault";
            case StatusCode.Unimplemented:
                return FuzzCall.MayBeUnimplemented.Contains(call.Rpc) || call.MalformedWire || call.MayBeUnsupported
                    ? null
                    : "answered Unimplemented for an rpc nacelle serves";
            case StatusCode.Unavailable when !call.MayBeUnavailable:
                return "answered Unavailable (kubelet retries that) although the daemon is up";
            case StatusCode.DeadlineExceeded or StatusCode.Cancelled when !call.MayHang:
                // The call's deadline, or the daemon's own answer (an exec's timeout): the time it took says which.
                return outcome.Elapsed >= call.Deadline
                    ? $"no answer within {call.Deadline.TotalSeconds} s"
                    : $"answered {code} after {outcome.Elapsed.TotalSeconds:0.#} s, though the call was not expected to time out";
        }

        if (code == StatusCode.ResourceExhausted && outcome.RequestBytes > FuzzValues.OneMegabyte / 2)
        {
            return null; // over a size limit: the right answer for any huge request
        }

        if (call.MustBe is { } allowed && !allowed.Contains(code) && !(call.MayHang && code is StatusCode.DeadlineExceeded or StatusCode.Cancelled))
        {
            return $"answered {code}, expected {string.Join(" or ", allowed)}";
        }

        if (call.ExpectOk && code != StatusCode.OK && !(call.MayHang && code is StatusCode.DeadlineExceeded or StatusCode.Cancelled))
        {
            return $"refused a valid request with {code}";
        }

        return null;
    }
}
