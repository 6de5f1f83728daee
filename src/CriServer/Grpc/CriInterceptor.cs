using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Nacelle.CriServer.Observability;

namespace Nacelle.CriServer.Grpc;

/// <summary>
/// Wraps every CRI call: one span, one latency observation, one log line, and the error mapping.
/// Services therefore contain only the translation between CRI and the domain.
/// </summary>
internal sealed class CriInterceptor(CriMetrics metrics, ILogger<CriInterceptor> logger) : Interceptor
{
    private readonly CriMetrics _metrics = metrics;
    private readonly ILogger _logger = logger;

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        using var call = Begin(context, request);
        try
        {
            RequestLimits.Check(request);
            var response = await continuation(request, context).ConfigureAwait(false);
            call.Succeeded();
            return response;
        }
        catch (Exception e)
        {
            throw call.Failed(e);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var call = Begin(context, request);
        try
        {
            RequestLimits.Check(request);
            await continuation(request, responseStream, context).ConfigureAwait(false);
            call.Succeeded();
        }
        catch (Exception e)
        {
            throw call.Failed(e);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var call = Begin(context, request: null);
        try
        {
            var response = await continuation(requestStream, context).ConfigureAwait(false);
            call.Succeeded();
            return response;
        }
        catch (Exception e)
        {
            throw call.Failed(e);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var call = Begin(context, request: null);
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
            call.Succeeded();
        }
        catch (Exception e)
        {
            throw call.Failed(e);
        }
    }

    private CallScope Begin(ServerCallContext context, object? request)
    {
        var rpc = RpcCatalog.Names(context.Method);
        var ids = RequestIds.Of(request);

        // A span only when a tracer listens (tracing on): without one neither the headers are read nor a span is made.
        Activity? activity = null;
        if (Tracing.Source.HasListeners())
        {
            // Continue the caller's trace when it sent W3C trace context (kubelet does when its tracing is on).
            var traceparent = context.RequestHeaders.GetValue("traceparent");
            ActivityContext.TryParse(traceparent, context.RequestHeaders.GetValue("tracestate"), out var parent);
            activity = Tracing.Source.StartActivity(rpc.Full, ActivityKind.Server, parent);
        }

        if (activity is not null)
        {
            activity.SetTag("rpc.system", "grpc");
            activity.SetTag("rpc.service", rpc.Full[..rpc.Full.IndexOf('/')]);
            activity.SetTag("rpc.method", rpc.Short);
            activity.SetTag("nacelle.pod_sandbox_id", ids.PodSandboxId);
            activity.SetTag("nacelle.container_id", ids.ContainerId);
            activity.SetTag("nacelle.image", ids.Image);
        }

        return new CallScope(this, context, rpc, ids, activity);
    }

    private sealed class CallScope(CriInterceptor owner, ServerCallContext context, RpcNames rpc, RequestIds ids, Activity? activity) : IDisposable
    {
        private readonly long _started = Stopwatch.GetTimestamp();

        public void Succeeded()
        {
            var elapsed = Stopwatch.GetElapsedTime(_started);
            owner._metrics.ObserveOk(rpc.Short, elapsed);
            activity?.SetTag("rpc.grpc.status_code", (int)StatusCode.OK);
            var level = rpc.Polled ? LogLevel.Debug : LogLevel.Information;
            Log.RpcCompleted(owner._logger, level, rpc.Short, nameof(StatusCode.OK), elapsed.TotalMilliseconds,
                ids.PodSandboxId, ids.ContainerId, ids.Image);
        }

        public RpcException Failed(Exception exception)
        {
            var elapsed = Stopwatch.GetElapsedTime(_started);
            var status = ErrorMapping.ToStatus(exception, rpc.Short, context.CancellationToken.IsCancellationRequested);
            owner._metrics.Observe(rpc.Short, status.StatusCode, elapsed);
            activity?.SetTag("rpc.grpc.status_code", (int)status.StatusCode);
            activity?.SetStatus(ActivityStatusCode.Error, status.Detail);

            if (ErrorMapping.IsServerFault(status.StatusCode))
            {
                Log.RpcInternalError(owner._logger, exception, rpc.Short, ids.PodSandboxId, ids.ContainerId, ids.Image);
            }
            else
            {
                var level = rpc.Polled ? LogLevel.Debug : LogLevel.Information;
                Log.RpcFailed(owner._logger, level, rpc.Short, status.StatusCode.ToString(), elapsed.TotalMilliseconds, status.Detail,
                    ids.PodSandboxId, ids.ContainerId, ids.Image);
            }

            return exception is RpcException same && same.StatusCode == status.StatusCode && same.Status.Detail == status.Detail
                ? same
                : new RpcException(status);
        }

        public void Dispose() => activity?.Dispose();
    }
}
