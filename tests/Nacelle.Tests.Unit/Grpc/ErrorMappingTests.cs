using Grpc.Core;
using Nacelle.Common;
using Nacelle.CriServer.Grpc;

namespace Nacelle.Tests.Unit.Grpc;

public sealed class ErrorMappingTests
{
    [Fact]
    public void EveryErrorKindHasItsOwnStatusCode()
    {
        var codes = Enum.GetValues<ErrorKind>().Select(ErrorMapping.ToStatusCode).ToList();
        Assert.DoesNotContain(StatusCode.Unknown, codes);
        Assert.Equal(codes.Count, codes.Distinct().Count());
        Assert.Equal(StatusCode.NotFound, ErrorMapping.ToStatusCode(ErrorKind.NotFound));
        Assert.Equal(StatusCode.FailedPrecondition, ErrorMapping.ToStatusCode(ErrorKind.FailedPrecondition));
    }

    [Fact]
    public void DomainExceptionsKeepTheirMessage()
    {
        var status = ErrorMapping.ToStatus(NacelleException.NotFound("pod sandbox \"abc\" not found"), "PodSandboxStatus", callCancelled: false);
        Assert.Equal(StatusCode.NotFound, status.StatusCode);
        Assert.Equal("pod sandbox \"abc\" not found", status.Detail);
    }

    [Fact]
    public void TheServiceBasesUnimplementedAnswerIsNamed()
    {
        var status = ErrorMapping.ToStatus(new RpcException(new Status(StatusCode.Unimplemented, "")), "RunPodSandbox", false);
        Assert.Equal(StatusCode.Unimplemented, status.StatusCode);
        Assert.Equal("RunPodSandbox is not implemented by nacelle", status.Detail);
    }

    [Fact]
    public void UnexpectedExceptionsAreInternalAndServerFaults()
    {
        var status = ErrorMapping.ToStatus(new InvalidOperationException("boom"), "Status", false);
        Assert.Equal(StatusCode.Internal, status.StatusCode);
        Assert.Contains("boom", status.Detail);
        Assert.True(ErrorMapping.IsServerFault(status.StatusCode));
        Assert.False(ErrorMapping.IsServerFault(StatusCode.NotFound));
    }

    [Fact]
    public void CancellationIsCancelledOnlyWhenTheCallerLeft()
    {
        Assert.Equal(StatusCode.Cancelled, ErrorMapping.ToStatus(new OperationCanceledException(), "PullImage", callCancelled: true).StatusCode);
        Assert.Equal(StatusCode.Unavailable, ErrorMapping.ToStatus(new OperationCanceledException(), "PullImage", callCancelled: false).StatusCode);
    }

    [Fact]
    public void AHugeDetailIsCutSoThatItStillFitsInTheTrailers()
    {
        var id = new string('a', 1 << 20);
        var status = ErrorMapping.ToStatus(NacelleException.NotFound($"pod sandbox {id} not found"), "PodSandboxStatus", false);

        Assert.Equal(StatusCode.NotFound, status.StatusCode);
        Assert.True(status.Detail.Length < ErrorMapping.MaxDetailLength + 100, $"{status.Detail.Length} characters");
        Assert.StartsWith("pod sandbox aaaa", status.Detail);
        Assert.EndsWith($"({id.Length + 22} characters, cut)", status.Detail);
    }
}
