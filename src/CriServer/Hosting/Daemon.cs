using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Nacelle.Storage;
using Nacelle.ContainerCore.Cgroups;
using Nacelle.ContainerCore.Interop;
using Nacelle.ContainerCore.Mounts;
using Nacelle.ContainerCore.Spawn;
using Nacelle.ImageService;
using Nacelle.ImageService.Registry;
using Nacelle.Sandbox.Containers;
using Nacelle.Sandbox.Handlers;
using Nacelle.Sandbox.Network;
using Nacelle.Sandbox.Pods;
using Nacelle.Sandbox.Store;
using Nacelle.Sandbox.Security;
using Nacelle.ContainerCore.Security;
using Nacelle.Sandbox.Streams;
using Nacelle.CriServer.Configuration;
using Nacelle.CriServer.Grpc;
using Nacelle.CriServer.Observability;
using Nacelle.CriServer.Services;
using Nacelle.CriServer.Streaming;

namespace Nacelle.CriServer.Hosting;

/// <summary>
/// Runs the daemon: takes the socket, serves CRI (HTTP/2 on the unix socket) and /metrics (HTTP/1.1 on TCP),
/// tells systemd when ready, on SIGHUP reloads the configuration (<see cref="ConfigReloader"/>: the live keys change,
/// the socket, streams and pods are untouched), and on SIGTERM/SIGINT drains in-flight calls within
/// grpc.shutdown_timeout, removes the socket and returns 0.
/// </summary>
internal static class Daemon
{
    /// <summary>An ExecSyncResponse's bytes besides its output: three field tags, two lengths, the exit code.</summary>
    private const int ExecSyncResponseOverhead = 64;

    /// <summary>
    /// malloc arenas for the daemon's threads (glibc makes up to 8 per core: a thread that finds the arenas locked gets
    /// a new one). The daemon's own objects are the GC's; malloc serves SQLite and the runtime's tables, and a burst of
    /// calls on many threads spread them over 16 arenas on a 2-core node, each keeping its partly used pages
    /// (docs/architecture.md, "The daemon's memory").
    /// </summary>
    public const int MallocArenas = 2;

    public static async Task<int> RunAsync(ConfigSources sources, LoadedConfig loaded)
    {
        // First, before the daemon's threads allocate: arenas made before the limit stay.
        var arenasLimited = NativeHeap.LimitArenas(MallocArenas);
        var config = loaded.Config;
        var reloader = new ConfigReloader(loaded, () => ConfigLoader.Load(sources));
        var logLevel = new LogLevelSwitch(LogLevelSwitch.Parse(config.LogLevel));
        var tracingSettings = TracingSettings.Resolve(config, loaded.ExplicitKeys, TracingSettings.ProcessEnvironment());

        var imageOptions = ImageOptions(config);
        if (imageOptions.Registry.NodeCredentials is { } nodeCredentials)
        {
            try
            {
                nodeCredentials.Validate();
            }
            catch (Nacelle.Common.NacelleException e)
            {
                throw new DaemonStartException(ExitCodes.Configuration, $"{e.Message}; fix the file, or set registry.auth_file = \"\"");
            }
        }

        if (config.Cgroup.Driver == "systemd")
        {
            await EnsureSystemdAsync().ConfigureAwait(false);
        }

        PrepareDirectory(config.Root, "root", "--root", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        PrepareDirectory(config.State, "state", "--state", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);

        using var guard = SocketGuard.Acquire(config.Grpc.Socket);
        var metricsEndPoint = config.Metrics.Enabled && ConfigKeys.TryParseListenAddress(config.Metrics.Address, out var ep, out _) ? ep : null;
        List<ListenAddress> listenAddresses = metricsEndPoint is null ? [] : [new(metricsEndPoint, "metrics.address", "or metrics.enabled = false")];
        if (config.Stream.Port != 0)
        {
            // Port 0 (the default) takes any free port and cannot be in use.
            listenAddresses.Add(new(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(config.Stream.Address), (int)config.Stream.Port),
                "stream.address/stream.port", "or stream.port = 0 (any free port)"));
        }

        // A port held by another process stops the daemon here, with one line, before pods are touched.
        ListenAddresses.EnsureAvailable(listenAddresses);

        // What the built-in handler can do on this kernel, found once by doing it (on the layers' file system): Status
        // reports it and RunPodSandbox refuses pods that need what is missing.
        var kernel = await ProbeKernelAsync(config.Root).ConfigureAwait(false);
        var handlers = await RuntimeHandlersAsync(config, kernel).ConfigureAwait(false);

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "nacelle" });
        ConfigureLogging(builder.Logging, config, logLevel);
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // Kestrel binds endpoints in order and serves each as soon as it is bound: the CRI socket goes last, so
            // once it answers, /metrics is listening too.
            if (metricsEndPoint is not null)
            {
                kestrel.Listen(metricsEndPoint, listen => listen.Protocols = HttpProtocols.Http1);
            }

            kestrel.ListenUnixSocket(config.Grpc.Socket, listen => listen.Protocols = HttpProtocols.Http2);
        });
        // Kestrel's blocks from pools that keep few (a burst's blocks would stay in the pinned heap).
        BoundedBlockPoolFactory.Register(builder.Services);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = config.Grpc.ShutdownTimeout);
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = (int)config.Grpc.MaxRecvMessageSize;
            o.MaxSendMessageSize = (int)config.Grpc.MaxSendMessageSize;
            o.Interceptors.Add<CriInterceptor>();
        });
        // One interceptor for every call (it keeps no per-call state), instead of one made for each.
        builder.Services.AddSingleton<CriInterceptor>();

        var metrics = new CriMetrics(CriMetrics.CreateDefaultRegistry());
        metrics.Prime(RpcCatalog.All);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(new DaemonInfo(reloader, CgroupLayout.Detect()));
        builder.Services.AddSingleton<RuntimeReadiness>();
        var database = OpenDatabase(config.Root);
        builder.Services.AddSingleton(database);
        builder.Services.AddSingleton(services =>
            new ImageManager(imageOptions, database, services.GetRequiredService<ILoggerFactory>()));
        // Disposed (its conf dir watcher stopped) with the host's service provider when the daemon stops.
        builder.Services.AddSingleton(services =>
            new CniNetwork(CniOptions(config), services.GetRequiredService<ILoggerFactory>().CreateLogger("Nacelle.Sandbox.Network")));

        // Pods: the store in the metadata database, their volatile state under the state directory. The monitor is
        // the nacelle-monitor beside this program ($NACELLE_MONITOR overrides, e.g. a JIT build in development).
        builder.Services.AddSingleton(new PodStore(database));
        builder.Services.AddSingleton(services => new PodManager(new PodManagerOptions
        {
            StateRoot = config.State,
            Handlers = handlers,
            // Pods kubelet gives no parent: a directory of ours, or under the systemd driver a slice of ours.
            DefaultCgroupParent = config.Cgroup.Driver == "systemd" ? Nacelle.ContainerCore.Cgroups.Systemd.SystemdUnits.DefaultSlice : "/nacelle",
            Logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Nacelle.Sandbox.Pods"),
            CrashPoint = Environment.GetEnvironmentVariable("NACELLE_TEST_CRASH"),
        }, services.GetRequiredService<PodStore>(), services.GetRequiredService<CniNetwork>()));
        builder.Services.AddSingleton(new ContainerEvents(onDropped: metrics.EventsDropped));
        builder.Services.AddSingleton(services =>
        {
            // AppArmor and SELinux are applied where the node enforces them; RuntimeDefault's AppArmor profile is
            // nacelle's own, loaded here once (on a node without AppArmor nothing is loaded or needed).
            var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Nacelle.Sandbox.Containers");
            var modules = LinuxSecurityModules.Detect();
            var (appArmorDefault, unavailable) = AppArmorDefaultProfile.Ensure(modules, config.State, logger);
            return new ContainerManagerOptions
            {
                Logger = logger,
                // ExecSync's answer carries the output: what one response message may hold, less its framing.
                ExecSyncOutputLimit = config.Grpc.MaxSendMessageSize - ExecSyncResponseOverhead,
                CrashPoint = Environment.GetEnvironmentVariable("NACELLE_TEST_CRASH"),
                SecurityModules = modules,
                AppArmorDefaultProfile = appArmorDefault,
                AppArmorDefaultUnavailable = unavailable,
            };
        });
        builder.Services.AddSingleton(services => new ContainerManager(services.GetRequiredService<ContainerManagerOptions>(), services.GetRequiredService<PodManager>(), services.GetRequiredService<ImageManager>(), services.GetRequiredService<ContainerEvents>()));
        // Exec, Attach and PortForward: the streaming server hands the bytes to the pods' side, which carries them on the
        // stdio descriptors the monitors hand over and on sockets the spawn helper makes in pods' network namespaces.
        builder.Services.AddSingleton(services => new ContainerStreams(services.GetRequiredService<ContainerManager>(),
            services.GetRequiredService<PodManager>(), new NamespaceConnector()));
        builder.Services.AddSingleton(services => new StreamingServer(StreamingOptions.From(config),
            new ContainerStreamBackend(services.GetRequiredService<ContainerStreams>()), services.GetRequiredService<ILoggerFactory>()));

        await using var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("nacelle");
        Log.Starting(logger, DaemonInfo.Version, config.Grpc.Socket, config.Root, config.State,
            loaded.Files.Count == 0 ? "(none: embedded defaults)" : string.Join(", ", loaded.Files));
        if (guard.RemovedStaleSocket)
        {
            Log.StaleSocketRemoved(logger, config.Grpc.Socket);
        }

        Log.KernelFeatures(logger, kernel.UserNamespaces, kernel.UserNamespacesMissing ?? "available", kernel.RecursiveReadOnlyMounts,
            kernel.RecursiveReadOnlyMissing ?? "available");

        using var tracerProvider = Tracing.Start(tracingSettings, DaemonInfo.Version);
        if (tracerProvider is not null)
        {
            Log.TracingEnabled(logger, tracingSettings.Protocol, tracingSettings.Endpoint, tracingSettings.SamplingRatio);
        }

        // CRI only on the unix socket, /metrics only on the TCP listener.
        app.Use((context, next) =>
        {
            // Unix-socket connections have no IP address; TCP ones always do.
            var onSocket = context.Connection.LocalIpAddress is null;
            var isMetrics = context.Request.Path == "/metrics";
            if (onSocket == isMetrics)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
        app.MapGrpcService<CriRuntimeService>();
        app.MapGrpcService<CriImageService>();
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.WriteAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });

        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStopping.Register(() =>
        {
            Log.ShuttingDown(logger, config.Grpc.ShutdownTimeout);
            Notify(logger, "STOPPING=1");
        });

        // Opens the stores (and clears leftovers of interrupted pulls) before the socket answers.
        try
        {
            app.Services.GetRequiredService<ImageManager>();
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory,
                $"root {config.Root}: cannot open the image stores: {e.Message}; repair or move the directory away, or set root (--root) to another");
        }

        // Pod network readiness is known (and the conf dir watched) before the first Status call.
        var network = app.Services.GetRequiredService<CniNetwork>();
        network.StartWatching();
        var networkStatus = network.Status();
        Log.CniWatching(logger, network.Options.ConfDir, string.Join(", ", network.Options.BinDirs), networkStatus.Ready, networkStatus.Message);
        // Before the socket answers: pods a killed daemon left half made are torn down, ready pods whose monitor or
        // pause-init is gone (a node reboot, a killed monitor) become NotReady with their containers exited, the others
        // are watched again; then creates of containers left half way are finished or undone, and every pod's monitor
        // is watched for exits again (states brought up to date from its exit records). The container manager exists
        // first: it hears of the pods found lost.
        var containers = app.Services.GetRequiredService<ContainerManager>();
        await app.Services.GetRequiredService<PodManager>().RecoverAsync().ConfigureAwait(false);
        await containers.RecoverAsync().ConfigureAwait(false);
        if (config.Cgroup.Driver == "systemd")
        {
            // Units of pods and containers this daemon no longer knows (killed half way, a lost store) are stopped.
            await app.Services.GetRequiredService<PodManager>().RemoveUnknownUnitsAsync().ConfigureAwait(false);
        }

        var streaming = app.Services.GetRequiredService<StreamingServer>();
        try
        {
            await streaming.StartAsync().ConfigureAwait(false);
        }
        catch (Nacelle.Common.NacelleException e) when (e.InnerException is { } cause && ListenAddresses.Explain(cause, listenAddresses) is { } failure)
        {
            // Another process took stream.port between the check above and the bind.
            throw failure;
        }
        catch (Nacelle.Common.NacelleException e)
        {
            // An address that cannot be listened on (stream.address/stream.port) or unusable TLS files (stream.cert_file/key_file).
            throw new DaemonStartException(e.Kind == Nacelle.Common.ErrorKind.Unavailable ? ExitCodes.InUse : ExitCodes.Configuration,
                e.Kind == Nacelle.Common.ErrorKind.Unavailable ? $"{e.Message}; set stream.address/stream.port to a free address" : e.Message);
        }

        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (IOException e) when (ListenAddresses.Explain(e, listenAddresses) is { } failure)
        {
            // Another process took the port between the check above and Kestrel's bind.
            guard.RemoveSocket();
            throw failure;
        }

        // The socket is created with the umask's mode (owner only); open it to the group, never to others.
        File.SetUnixFileMode(config.Grpc.Socket,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        Log.MallocArenasLimited(logger, MallocArenas, arenasLimited);
        Log.Serving(logger, config.Grpc.Socket);
        if (metricsEndPoint is not null)
        {
            Log.MetricsListening(logger, metricsEndPoint.ToString());
        }

        Notify(logger, "READY=1");

        RegisterReloadParticipants(reloader, app.Services, logLevel);
        using var reloadSignal = ReloadOnSignal(reloader, logger);

        using var trimmer = MemoryTrimmer.Start(logger, database);
        await app.WaitForShutdownAsync().ConfigureAwait(false);
        // Open streams end with the daemon; containers and their logs are the monitors' and go on.
        await streaming.StopAsync().ConfigureAwait(false);
        guard.RemoveSocket();
        Log.Stopped(logger, config.Grpc.Socket);
        return ExitCodes.Success;
    }

    /// <summary>
    /// The parts that take live keys on a reload: logging (log_level), the image service (registry.*,
    /// image.pinned_images) and pod networking (cni.*). Each checks the new values before any of them applies its own.
    /// </summary>
    private static void RegisterReloadParticipants(ConfigReloader reloader, IServiceProvider services, LogLevelSwitch logLevel)
    {
        reloader.Register(new ReloadParticipant("logging", next =>
        {
            var level = LogLevelSwitch.Parse(next.LogLevel);
            return () => logLevel.Level = level;
        }));

        var images = services.GetRequiredService<ImageManager>();
        reloader.Register(new ReloadParticipant("images", next =>
        {
            var options = ImageOptions(next);
            try
            {
                options.Registry.NodeCredentials?.Validate();
            }
            catch (Nacelle.Common.NacelleException e)
            {
                throw new ConfigException(next.Registry.AuthFile, "registry.auth_file", e.Message);
            }

            return () => images.Reconfigure(options.Registry, options.PinnedImages);
        }));

        var network = services.GetRequiredService<CniNetwork>();
        reloader.Register(new ReloadParticipant("cni", next =>
        {
            var options = CniOptions(next);
            return () => network.Reconfigure(options);
        }));
    }

    /// <summary>SIGHUP reloads the configuration (systemctl reload nacelle); one line says what happened.</summary>
    private static PosixSignalRegistration ReloadOnSignal(ConfigReloader reloader, ILogger logger)
    {
        var pending = 0;
        return PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // not the default action (exit)
            if (Interlocked.Exchange(ref pending, 1) == 1)
            {
                return; // a reload is queued: it will read the files as they are then
            }

            _ = Task.Run(() =>
            {
                Interlocked.Exchange(ref pending, 0);
                Reload(reloader, logger);
            });
        });
    }

    internal static void Reload(ConfigReloader reloader, ILogger logger)
    {
        Notify(logger, "RELOADING=1");
        try
        {
            var outcome = reloader.Reload();
            if (outcome.Refused is { } refused)
            {
                Log.ReloadRefused(logger, refused.Message);
                return;
            }

            if (outcome.Deferred.Count > 0)
            {
                Log.ReloadDeferred(logger, string.Join(", ", outcome.Deferred));
            }

            Log.Reloaded(logger, outcome.Applied.Count == 0 ? "(nothing)" : string.Join(", ", outcome.Applied),
                reloader.Current.Files.Count == 0 ? "(none: embedded defaults)" : string.Join(", ", reloader.Current.Files));
        }
        catch (Exception e) when (e is Nacelle.Common.NacelleException or IOException or UnauthorizedAccessException)
        {
            // A part failed while applying values it had accepted: the rest keep what they have; say so in one line.
            Log.ReloadFailed(logger, e.Message);
        }
        finally
        {
            Notify(logger, "READY=1");
        }
    }

    /// <summary>
    /// The systemd cgroup driver hands every container to systemd: systemd must be this node's init (sd_booted(3): its
    /// /run/systemd/system exists) and answer on the system bus, else the daemon stops here with one line naming
    /// cgroup.driver.
    /// </summary>
    private static async Task EnsureSystemdAsync()
    {
        const string fix = "run nacelle on a node booted with systemd, or set cgroup.driver = \"cgroupfs\" (and kubelet's --cgroup-driver=cgroupfs)";
        if (!Directory.Exists("/run/systemd/system"))
        {
            throw new DaemonStartException(ExitCodes.Configuration,
                $"cgroup.driver \"systemd\": systemd is not this node's init (/run/systemd/system is missing); {fix}");
        }

        var systemd = new Nacelle.ContainerCore.Cgroups.Systemd.SystemdManager();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await systemd.PingAsync(timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Nacelle.Common.NacelleException or OperationCanceledException)
        {
            var why = e is OperationCanceledException ? $"systemd did not answer on the system bus {systemd.Address} within 10 s" : e.Message;
            throw new DaemonStartException(ExitCodes.Configuration, $"cgroup.driver \"systemd\": {why}; {fix}");
        }
    }

    private static MetadataDatabase OpenDatabase(string root)
    {
        var path = Path.Combine(root, "metadata.db");
        try
        {
            return new MetadataDatabase(path);
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory,
                $"root {root}: cannot open the metadata database {path}: {e.Message}; repair or move it away, or set root (--root) to another directory");
        }
    }

    /// <summary>The image service's view of the configuration.</summary>
    internal static ImageServiceOptions ImageOptions(NacelleConfig config) => new()
    {
        Root = config.Root,
        MaxConcurrentDownloads = (int)config.Image.MaxConcurrentDownloads,
        PinnedImages = config.Image.PinnedImages,
        Registry = new RegistryOptions
        {
            NoProgressTimeout = config.Registry.NoProgressTimeout,
            MaxAttempts = (int)config.Registry.MaxAttempts,
            NodeCredentials = config.Registry.AuthFile.Length > 0 ? new NodeCredentials(config.Registry.AuthFile) : null,
            Hosts = config.Registry.Hosts.Select(h => new RegistryHostConfig
            {
                Host = h.Key,
                Mirrors = h.Value.Mirrors,
                Server = NullIfEmpty(h.Value.Server),
                Fallback = h.Value.Fallback,
                PlainHttp = h.Value.PlainHttp,
                SkipVerify = h.Value.SkipVerify,
                CaFile = NullIfEmpty(h.Value.CaFile),
                ClientCertFile = NullIfEmpty(h.Value.ClientCertFile),
                ClientKeyFile = NullIfEmpty(h.Value.ClientKeyFile),
            }).ToList(),
        },
    };

    /// <summary>The CNI client's view of the configuration.</summary>
    internal static CniOptions CniOptions(NacelleConfig config)
    {
        var cacheDir = config.Cni.EffectiveCacheDir(config.Root);
        return new CniOptions
        {
            ConfDir = config.Cni.ConfDir,
            BinDirs = [.. config.Cni.BinDirs],
            CacheDir = cacheDir,
            PluginTimeout = config.Cni.PluginTimeout,
            EnableDefaultNetwork = config.Cni.DefaultNetwork == NacelleConfig.CniSection.BuiltinNetwork,
            DefaultNetworkMasquerade = config.Cni.DefaultMasquerade,
            DefaultPodCidr = config.Cni.DefaultPodCidr,
            DefaultBridgeName = config.Cni.DefaultBridge,
            // host-local's allocations of the built-in network live with the cache, not in the host's /var/lib/cni.
            HostLocalDataDir = Path.Combine(cacheDir, "networks"),
        };
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static void Notify(ILogger logger, string state)
    {
        try
        {
            SystemdNotifier.Notify(state);
        }
        catch (SocketException e)
        {
            Log.NotifyFailed(logger, e, SystemdNotifier.SocketPath ?? string.Empty);
        }
    }

    /// <summary>
    /// Creates a state directory (and its parents) when missing and checks that this process can write there, so a
    /// read-only or foreign directory stops the daemon with one line naming the key instead of failing later, half way.
    /// </summary>
    /// <summary>The kernel probe; a probe that cannot run at all leaves the features off, saying why.</summary>
    /// <summary>
    /// The built-in handlers and the configured ones ([runtime.handlers.&lt;name&gt;]): aliases of the built-in core share
    /// its features; an external OCI runtime's are probed from its `features` answer. A runtime missing on this node
    /// does not stop the daemon: its handler is listed without features and refuses pods, saying why.
    /// </summary>
    internal static async Task<RuntimeHandlers> RuntimeHandlersAsync(NacelleConfig config, KernelFeatures kernel)
    {
        var configured = new List<RuntimeHandler>();
        foreach (var (name, section) in config.Runtime.Handlers)
        {
            if (section.Type == NacelleConfig.RuntimeHandlerTypes.BuiltIn)
            {
                configured.Add(new RuntimeHandler(name, RuntimeHandlerKind.BuiltIn, RuntimeHandlers.BuiltInFeatures(kernel)));
                continue;
            }

            var external = new Nacelle.Common.PodMonitor.ExternalRuntime(name, section.Path, section.EffectiveRoot(config.State, name), [.. section.Args]);
            configured.Add(await OciRuntimeFeatures.ProbeAsync(external, kernel).ConfigureAwait(false));
        }

        return RuntimeHandlers.With(kernel, configured);
    }

    private static async Task<KernelFeatures> ProbeKernelAsync(string root)
    {
        try
        {
            return await KernelFeatures.ProbeAsync(root).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Nacelle.Common.NacelleException)
        {
            var why = $"the kernel probe failed: {e.Message}";
            return new KernelFeatures(false, why, false, why);
        }
    }

    private static void PrepareDirectory(string path, string key, string flag, UnixFileMode mode)
    {
        string Failure(string problem) =>
            $"{key} {path}: {problem}; make it a writable directory or set {key} ({flag}) to one";

        try
        {
            if (!Directory.Exists(path))
            {
                if (File.Exists(path))
                {
                    throw new DaemonStartException(ExitCodes.StateDirectory, Failure("exists and is not a directory"));
                }

                Directory.CreateDirectory(path, mode);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory, Failure($"cannot create the directory: {e.Message}"));
        }

        var probe = Path.Combine(path, $".nacelle-write-check-{Environment.ProcessId}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartException(ExitCodes.StateDirectory, Failure($"cannot write there: {e.Message}"));
        }
    }

    private static void ConfigureLogging(ILoggingBuilder logging, NacelleConfig config, LogLevelSwitch level)
    {
        logging.ClearProviders();
        // Every level passes the builder; the one filter below decides, reading the switch a reload turns.
        logging.SetMinimumLevel(LogLevel.Trace);
        logging.AddFilter(level.Allows);
        logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);

        if (config.LogFormat == "json")
        {
            logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 })
        {
            logging.AddSystemdConsole(o => o.UseUtcTimestamp = true);
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
        }
    }
}
