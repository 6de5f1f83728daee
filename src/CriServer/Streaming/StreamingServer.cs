using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nacelle.Common;
using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Hosting;
using Nacelle.CriServer.Streaming.Spdy;
using Nacelle.CriServer.Streaming.WebSockets;

namespace Nacelle.CriServer.Streaming;

/// <summary>The streaming server's settings (config section [stream]; the defaults are the config's).</summary>
internal sealed record StreamingOptions
{
    private static readonly NacelleConfig.StreamSection Defaults = new();

    public IPAddress Address { get; init; } = IPAddress.Parse(Defaults.Address);

    /// <summary>0: any free port.</summary>
    public int Port { get; init; } = (int)Defaults.Port;

    /// <summary>PEM certificate and key for https; both empty: plain http.</summary>
    public string CertFile { get; init; } = Defaults.CertFile;

    public string KeyFile { get; init; } = Defaults.KeyFile;

    /// <summary>A connection that carries nothing for this long is closed (zero: never).</summary>
    public TimeSpan IdleTimeout { get; init; } = Defaults.IdleTimeout;

    /// <summary>How long a SPDY client may take to open the streams of a session (or of a forwarded connection).</summary>
    public TimeSpan CreationTimeout { get; init; } = Defaults.CreationTimeout;

    public int MaxStreams { get; init; } = (int)Defaults.MaxStreams;

    public int MaxStreamsPerPod { get; init; } = (int)Defaults.MaxStreamsPerPod;

    /// <summary>An unused URL stops working after this long.</summary>
    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>URLs handed out and not yet used, at most.</summary>
    public int MaxPendingTokens { get; init; } = 4096;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public static StreamingOptions From(NacelleConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new StreamingOptions
        {
            Address = IPAddress.Parse(config.Stream.Address),
            Port = (int)config.Stream.Port,
            CertFile = config.Stream.CertFile,
            KeyFile = config.Stream.KeyFile,
            IdleTimeout = config.Stream.IdleTimeout,
            CreationTimeout = config.Stream.CreationTimeout,
            MaxStreams = (int)config.Stream.MaxStreams,
            MaxStreamsPerPod = (int)config.Stream.MaxStreamsPerPod,
        };
    }
}

/// <summary>
/// nacelle's streaming server: an HTTP/1.1 listener of its own that serves the URLs Exec, Attach and PortForward
/// hand out (<c>/exec/&lt;token&gt;</c>, <c>/attach/&lt;token&gt;</c>, <c>/portforward/&lt;token&gt;</c>) over SPDY/3.1
/// or WebSocket. A token is used once: an unknown, used or expired one is answered 404 and nothing runs. Without a
/// backend the server is off and the rpcs answer Unimplemented, so no URL leads nowhere.
/// </summary>
internal sealed class StreamingServer : IAsyncDisposable
{
    private readonly StreamingOptions _options;
    private readonly IStreamBackend? _backend;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly StreamTokens _tokens;
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;

    public StreamingServer(StreamingOptions options, IStreamBackend? backend, ILoggerFactory loggerFactory)
    {
        _options = options;
        _backend = backend;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Nacelle.CriServer.Streaming");
        _tokens = new StreamTokens(options.TokenLifetime, options.MaxPendingTokens, options.Time);
        Limits = new StreamLimits(options.MaxStreams, options.MaxStreamsPerPod);
    }

    /// <summary>False while no backend can run streams: the rpcs then answer Unimplemented.</summary>
    public bool Enabled => _backend is not null;

    /// <summary>http(s)://address:port/ once started.</summary>
    public Uri? BaseUrl { get; private set; }

    public StreamLimits Limits { get; }

    /// <summary>Throws Unimplemented (naming the rpc) while the server is off.</summary>
    public void EnsureEnabled(string rpc)
    {
        if (!Enabled)
        {
            throw NacelleException.Unimplemented($"{rpc} is not implemented by nacelle");
        }
    }

    /// <summary>Keeps a validated request under a new single-use token and returns its URL.</summary>
    public string Register(PendingStream request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var baseUrl = BaseUrl ?? throw NacelleException.Unavailable("the streaming server is not listening");
        if (Limits.WouldRefuse(request.PodId) is { } why)
        {
            throw new NacelleException(ErrorKind.ResourceExhausted, why);
        }

        return $"{baseUrl}{request.PathSegment}/{_tokens.Add(request)}";
    }

    public async Task StartAsync()
    {
        if (!Enabled)
        {
            throw new InvalidOperationException("the streaming server has no backend");
        }

        var tls = _options.CertFile.Length > 0;
        var certificate = tls ? LoadCertificate(_options.CertFile, _options.KeyFile) : null;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "nacelle" });
        builder.Services.AddSingleton(_loggerFactory);
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A slow reader is held back by flow control, not disconnected.
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Listen(new IPEndPoint(_options.Address, _options.Port), listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
        });
        // Kestrel's blocks from pools that keep few, as the CRI socket's (a port-forward burst's would stay pinned).
        BoundedBlockPoolFactory.Register(builder.Services);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = StreamContext.Linger);
        // Started and stopped by its owner (the daemon), never by signals of its own.
        builder.Services.AddSingleton<IHostLifetime, OwnedLifetime>();
        var app = builder.Build();
        app.UseWebSockets();
        app.Run(HandleAsync);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw NacelleException.Unavailable($"the streaming server cannot listen on {_options.Address}:{_options.Port}: {e.Message}", e);
        }

        _app = app;
        var port = new Uri(app.Urls.First()).Port;
        var host = _options.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{_options.Address}]" : _options.Address.ToString();
        BaseUrl = new Uri($"{(tls ? "https" : "http")}://{host}:{port}/");
        StreamLog.Listening(_logger, BaseUrl.ToString());
    }

    private static X509Certificate2 LoadCertificate(string certFile, string keyFile)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certFile, keyFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw NacelleException.InvalidArgument($"stream.cert_file {certFile} / stream.key_file {keyFile}: {e.Message}");
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var segments = (context.Request.Path.Value ?? string.Empty).Trim('/').Split('/');
        StreamKind? kind = segments.Length == 2
            ? segments[0] switch
            {
                "exec" => StreamKind.Exec,
                "attach" => StreamKind.Attach,
                "portforward" => StreamKind.PortForward,
                _ => null,
            }
            : null;
        if (kind is null || !(HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsPost(context.Request.Method)))
        {
            await RefuseAsync(context, StatusCodes.Status404NotFound, "not found").ConfigureAwait(false);
            return;
        }

        // Taken even when it turns out to be of another kind: a token is tried once.
        var request = _tokens.Take(segments[1]);
        if (request is null || request.Kind != kind)
        {
            await RefuseAsync(context, StatusCodes.Status404NotFound, "stream token not found: unknown, already used or expired").ConfigureAwait(false);
            return;
        }

        using var lease = Limits.TryAcquire(request.PodId, out var refused);
        if (lease is null)
        {
            await RefuseAsync(context, StatusCodes.Status429TooManyRequests, refused).ConfigureAwait(false);
            return;
        }

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var stream = new StreamContext
        {
            Request = request, Backend = _backend!, Options = _options, Limits = Limits, Logger = _logger, Cancellation = cancel.Token,
        };
        if (context.WebSockets.IsWebSocketRequest)
        {
            await ServeWebSocketAsync(context, stream).ConfigureAwait(false);
        }
        else
        {
            await ServeSpdyAsync(context, stream).ConfigureAwait(false);
        }
    }

    private async Task ServeSpdyAsync(HttpContext context, StreamContext stream)
    {
        var portForward = stream.Request.Kind == StreamKind.PortForward;
        var accepted = await SpdyUpgrade.AcceptAsync(context, portForward ? StreamProtocols.SpdyPortForward : StreamProtocols.SpdyRemoteCommand)
            .ConfigureAwait(false);
        if (accepted is not { } upgrade)
        {
            StreamLog.Refused(_logger, context.Response.StatusCode, $"{stream.Request.PathSegment}: not a usable SPDY upgrade");
            return;
        }

        if (portForward)
        {
            await SpdyPortForward.ServeAsync(stream, upgrade.Transport, upgrade.Socket).ConfigureAwait(false);
        }
        else
        {
            await SpdyRemoteCommand.ServeAsync(stream, upgrade.Protocol, upgrade.Transport, upgrade.Socket).ConfigureAwait(false);
        }
    }

    private async Task ServeWebSocketAsync(HttpContext context, StreamContext stream)
    {
        var portForward = stream.Request.Kind == StreamKind.PortForward;
        var supported = portForward ? StreamProtocols.WebSocketPortForward : StreamProtocols.WebSocketRemoteCommand;
        var requested = context.WebSockets.WebSocketRequestedProtocols;
        string protocol;
        string? subprotocol = null;
        if (requested.Count == 0)
        {
            // No subprotocol: kubelet's default, binary channels with the v1 error stream.
            protocol = portForward ? StreamProtocols.PortForward : StreamProtocols.V1;
        }
        else if (StreamProtocols.Negotiate(requested, supported) is { } chosen)
        {
            protocol = subprotocol = chosen;
        }
        else
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest,
                $"none of the requested WebSocket subprotocols ({string.Join(", ", requested)}) is spoken here; supported: {string.Join(", ", supported)}")
                .ConfigureAwait(false);
            return;
        }

        IReadOnlyList<int> ports = [];
        if (portForward)
        {
            try
            {
                var query = context.Request.Query;
                ports = WebSocketPortForward.Ports([.. query["ports"], .. query["port"]], (PortForwardStream)stream.Request);
            }
            catch (PortForwardException e)
            {
                await RefuseAsync(context, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
                return;
            }
        }

        WebSocket socket;
        try
        {
            socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = subprotocol }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or WebSocketException or InvalidOperationException)
        {
            StreamLog.Refused(_logger, StatusCodes.Status400BadRequest, $"WebSocket handshake failed: {e.Message}");
            return;
        }

        using (socket)
        {
            if (portForward)
            {
                await WebSocketPortForward.ServeAsync(stream, protocol, socket, ports).ConfigureAwait(false);
            }
            else
            {
                await WebSocketRemoteCommand.ServeAsync(stream, protocol, socket).ConfigureAwait(false);
            }
        }
    }

    private async Task RefuseAsync(HttpContext context, int status, string message)
    {
        StreamLog.Refused(_logger, status, message);
        await SpdyUpgrade.RefuseAsync(context, status, message).ConfigureAwait(false);
    }

    /// <summary>Ends every open stream and stops listening.</summary>
    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_app is not null)
        {
            await _app.StopAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_app is not null)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }
}

/// <summary>The lifetime of a host its owner starts and stops: no signal handlers, no console messages.</summary>
internal sealed class OwnedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
