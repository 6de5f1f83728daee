using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Nacelle.Tests.Support.Registry;

/// <summary>How a <see cref="RegistryServer"/> authenticates clients.</summary>
public enum RegistryAuthMode
{
    /// <summary>Anonymous read and write.</summary>
    None,
    /// <summary>htpasswd Basic authentication (use with TLS).</summary>
    Basic,
    /// <summary>Bearer tokens from a <see cref="TokenServer"/> running in the test process.</summary>
    Token,
}

/// <summary>Options of a <see cref="RegistryServer"/>.</summary>
public sealed class RegistryServerOptions
{
    /// <summary>Authentication mode.</summary>
    public RegistryAuthMode Auth { get; init; } = RegistryAuthMode.None;

    /// <summary>Serve HTTPS with a certificate from a fresh test CA (see <see cref="RegistryServer.CaPemPath"/>).</summary>
    public bool Tls { get; init; }

    /// <summary>With <see cref="Tls"/>: require a client certificate signed by the test CA (mutual TLS).</summary>
    public bool RequireClientCertificate { get; init; }

    /// <summary>The user for Basic auth and for the token server's Basic credentials.</summary>
    public string Username { get; init; } = "tester";

    /// <summary>The password of <see cref="Username"/>.</summary>
    public string Password { get; init; } = "correct-horse-battery";

    /// <summary>Token mode: the identity (refresh) token the token server accepts.</summary>
    public string? IdentityToken { get; init; }

    /// <summary>Token mode: whether the token server issues pull tokens without credentials.</summary>
    public bool AllowAnonymousTokens { get; init; } = true;
}

/// <summary>
/// A real OCI registry for tests: Debian's <c>/usr/bin/docker-registry</c> on 127.0.0.1 with a free port and
/// filesystem storage in a temp dir, optionally with TLS (test CA), htpasswd Basic auth or token auth. Disposing kills
/// the process by pid and deletes the temp dir.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    /// <summary>The registry binary (package docker-registry).</summary>
    public const string RegistryBinary = "/usr/bin/docker-registry";

    private readonly Process _process;
    private readonly StringBuilder _output;
    private readonly TestCertificateAuthority? _ca;

    private RegistryServer(Process process, StringBuilder output, string directory, string host, RegistryServerOptions options,
        TestCertificateAuthority? ca, string? caPemPath, TokenServer? tokens)
    {
        _process = process;
        _output = output;
        Directory = directory;
        Host = host;
        Options = options;
        _ca = ca;
        CaPemPath = caPemPath;
        Tokens = tokens;
    }

    /// <summary><c>127.0.0.1:PORT</c>, the registry part of image references.</summary>
    public string Host { get; }

    /// <summary>The registry's base URL, <c>http(s)://127.0.0.1:PORT/</c>.</summary>
    public Uri BaseUri => new($"{(Options.Tls ? "https" : "http")}://{Host}/");

    /// <summary>The options it was started with.</summary>
    public RegistryServerOptions Options { get; }

    /// <summary>The temp dir holding config, certificates and storage.</summary>
    public string Directory { get; }

    /// <summary>The PEM of the CA that signed the server certificate, when <see cref="RegistryServerOptions.Tls"/>.</summary>
    public string? CaPemPath { get; }

    /// <summary>A client certificate (PEM) issued by the test CA, when <see cref="RegistryServerOptions.RequireClientCertificate"/>.</summary>
    public string? ClientCertificatePath => Options.RequireClientCertificate ? Path.Combine(Directory, "client.pem") : null;

    /// <summary>The private key (PEM) of <see cref="ClientCertificatePath"/>.</summary>
    public string? ClientKeyPath => Options.RequireClientCertificate ? Path.Combine(Directory, "client-key.pem") : null;

    /// <summary>The CA itself (to issue client certificates), when TLS.</summary>
    public TestCertificateAuthority? CertificateAuthority => _ca;

    /// <summary>The token server, in <see cref="RegistryAuthMode.Token"/> mode.</summary>
    public TokenServer? Tokens { get; }

    /// <summary>The registry process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>What the registry printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>A push client for this registry with its credentials and CA.</summary>
    public OciPusher CreatePusher() => new(Host, Options.Tls, CaPemPath,
        Options.Auth == RegistryAuthMode.None ? null : Options.Username,
        Options.Auth == RegistryAuthMode.None ? null : Options.Password,
        ClientCertificatePath, ClientKeyPath);

    /// <summary>Starts a registry and waits until GET /v2/ answers (up to 30 s).</summary>
    public static async Task<RegistryServer> StartAsync(RegistryServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        // The free port is found by binding and releasing it, so another process may take it first: try again then.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(options, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException ex) when (attempt < 3 && ex.Message.Contains("address already in use", StringComparison.Ordinal))
            {
            }
        }
    }

    private static async Task<RegistryServer> StartOnceAsync(RegistryServerOptions? options, CancellationToken cancellationToken)
    {
        options ??= new RegistryServerOptions();
        if (options.RequireClientCertificate && !options.Tls)
            throw new ArgumentException("RequireClientCertificate needs Tls", nameof(options));
        if (!File.Exists(RegistryBinary))
            throw new InvalidOperationException($"{RegistryBinary} is missing: install Debian's docker-registry package");
        string dir = System.IO.Directory.CreateTempSubdirectory("nacelle-registry-").FullName;
        TestCertificateAuthority? ca = null;
        TokenServer? tokens = null;
        bool owned = false;
        try
        {
            var config = new StringBuilder();
            int port = FreePort();
            string host = $"127.0.0.1:{port}";
            config.Append($"""
                version: 0.1
                log:
                  level: info
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: {dir}/data
                  delete:
                    enabled: true
                  maintenance:
                    uploadpurging:
                      enabled: false
                http:
                  addr: {host}
                  secret: {Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}

                """);
            string? caPath = null;
            if (options.Tls)
            {
                ca = TestCertificateAuthority.Create();
                caPath = Path.Combine(dir, "ca.pem");
                File.WriteAllText(caPath, ca.CertificatePem);
                (string cert, string key) = ca.IssueServerCertificate().WriteTo(dir, "server");
                config.Append($"""
                      tls:
                        certificate: {cert}
                        key: {key}

                    """);
                if (options.RequireClientCertificate)
                {
                    ca.IssueClientCertificate().WriteTo(dir, "client");
                    config.Append($"""
                            clientcas:
                              - {caPath}

                        """);
                }
            }
            switch (options.Auth)
            {
                case RegistryAuthMode.Basic:
                    string htpasswd = Path.Combine(dir, "htpasswd");
                    File.WriteAllText(htpasswd, await RunHtpasswdAsync(options.Username, options.Password, cancellationToken).ConfigureAwait(false));
                    config.Append($"""
                        auth:
                          htpasswd:
                            realm: nacelle-test
                            path: {htpasswd}

                        """);
                    break;
                case RegistryAuthMode.Token:
                    tokens = await TokenServer.StartAsync(username: options.Username, password: options.Password,
                        identityToken: options.IdentityToken, allowAnonymous: options.AllowAnonymousTokens).ConfigureAwait(false);
                    string bundle = Path.Combine(dir, "token-signer.pem");
                    File.WriteAllText(bundle, tokens.SigningCertificatePem);
                    config.Append($"""
                        auth:
                          token:
                            realm: {tokens.Realm}
                            service: {tokens.Service}
                            issuer: {tokens.Issuer}
                            rootcertbundle: {bundle}

                        """);
                    break;
            }
            string configPath = Path.Combine(dir, "config.yml");
            File.WriteAllText(configPath, config.ToString());

            var output = new StringBuilder();
            var psi = new ProcessStartInfo(RegistryBinary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("serve");
            psi.ArgumentList.Add(configPath);
            var process = new Process { StartInfo = psi };
            process.OutputDataReceived += (_, e) => Append(output, e.Data);
            process.ErrorDataReceived += (_, e) => Append(output, e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new RegistryServer(process, output, dir, host, options, ca, caPath, tokens);
            owned = true;
            try
            {
                await server.WaitReadyAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await server.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            return server;
        }
        catch when (!owned)
        {
            // Failed before the server object took ownership: clean up here (its DisposeAsync does it otherwise).
            if (tokens is not null)
                await tokens.DisposeAsync().ConfigureAwait(false);
            ca?.Dispose();
            TryDeleteDirectory(dir);
            throw;
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
            return;
        lock (output)
        {
            if (output.Length < 1_000_000)
                output.AppendLine(line);
        }
    }

    private async Task WaitReadyAsync(CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler();
        if (Options.Tls)
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        if (ClientCertificatePath is not null)
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(ClientCertificatePath, ClientKeyPath)];
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                _process.WaitForExit(); // lets the output readers reach the end, so the message has the reason
                throw new InvalidOperationException($"docker-registry exited with code {_process.ExitCode} before answering:\n{Output}");
            }
            try
            {
                using HttpResponseMessage r = await client.GetAsync(new Uri(BaseUri, "v2/"), cancellationToken).ConfigureAwait(false);
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                    return;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"docker-registry on {Host} did not answer GET /v2/ within 30 s:\n{Output}");
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<string> RunHtpasswdAsync(string user, string password, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("/usr/bin/htpasswd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "-Bbn", user, password })
            psi.ArgumentList.Add(arg);
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        await p.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"htpasswd failed ({p.ExitCode}): {await stderr.ConfigureAwait(false)}");
        return (await stdout.ConfigureAwait(false)).Trim() + "\n";
    }

    /// <summary>A free TCP port on 127.0.0.1 (bound and released; a small race with other processes is accepted).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Kills the registry by pid, stops the token server and deletes the temp dir.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: false);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
        }
        finally
        {
            _process.Dispose();
            if (Tokens is not null)
                await Tokens.DisposeAsync().ConfigureAwait(false);
            _ca?.Dispose();
            TryDeleteDirectory(Directory);
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
