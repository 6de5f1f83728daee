using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;

namespace Nacelle.Tests.Support.Registry;

/// <summary>
/// A loopback HTTP proxy in front of a registry for resilience tests. Each request first goes to <see cref="Intercept"/>
/// (return true when it answered the request itself); everything else is forwarded to the upstream registry.
/// Records every request line and Range header, so a test can tell whether (and how often) a registry was contacted.
/// </summary>
public sealed class TestProxy : IAsyncDisposable
{
    private static readonly HashSet<string> s_skipResponseHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Transfer-Encoding", "Connection", "Keep-Alive", "Content-Length",
    };

    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
    private LoopbackHttpServer? _server;

    private TestProxy(Uri upstream) => Upstream = upstream;

    public Uri Upstream { get; }

    public ConcurrentQueue<string> Requests { get; } = new();

    public ConcurrentQueue<string> Ranges { get; } = new();

    public Func<HttpContext, int, Task<bool>>? Intercept { get; set; }

    /// <summary>Whether to pass the Range header upstream (false: the proxy behaves like a server without range support).</summary>
    public bool ForwardRange { get; set; } = true;

    public string Host => _server!.Host;

    public Uri BaseUri => _server!.BaseUri;

    private int _count;

    public static async Task<TestProxy> StartAsync(Uri upstream)
    {
        var proxy = new TestProxy(upstream);
        proxy._server = await LoopbackHttpServer.StartAsync(proxy.HandleAsync);
        return proxy;
    }

    public int CountOf(string fragment) => Requests.Count(r => r.Contains(fragment, StringComparison.Ordinal));

    private async Task HandleAsync(HttpContext context)
    {
        int n = Interlocked.Increment(ref _count);
        string line = $"{context.Request.Method} {context.Request.Path}{context.Request.QueryString}";
        Requests.Enqueue(line);
        string range = context.Request.Headers.Range.ToString();
        if (range.Length > 0)
            Ranges.Enqueue(range);
        if (Intercept is not null && await Intercept(context, n))
            return;
        await ForwardAsync(context);
    }

    public async Task ForwardAsync(HttpContext context, Func<Stream, HttpContext, Task>? writeBody = null)
    {
        var target = new Uri(Upstream, context.Request.Path + context.Request.QueryString);
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), target);
        foreach (var header in context.Request.Headers)
        {
            if (header.Key is "Host" or "Content-Length" or "Content-Type" || (!ForwardRange && header.Key == "Range"))
                continue;
            request.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
        }
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            request.Content = new StreamContent(context.Request.Body);
            if (context.Request.ContentType is not null)
                request.Content.Headers.TryAddWithoutValidation("Content-Type", context.Request.ContentType);
        }
        using HttpResponseMessage response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var header in response.Headers.Concat(response.Content.Headers))
        {
            if (!s_skipResponseHeaders.Contains(header.Key))
                context.Response.Headers[header.Key] = header.Value.ToArray();
        }
        if (response.Content.Headers.ContentLength is long length)
            context.Response.ContentLength = length;
        await using Stream body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        if (writeBody is not null)
            await writeBody(body, context);
        else
            await body.CopyToAsync(context.Response.Body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _client.Dispose();
    }
}
