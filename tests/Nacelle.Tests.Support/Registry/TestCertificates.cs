using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Nacelle.Tests.Support.Registry;

/// <summary>A PEM certificate and its PEM private key (PKCS#8), as written for docker-registry and for clients.</summary>
public sealed record PemPair(string CertificatePem, string PrivateKeyPem)
{
    /// <summary>Writes <c>&lt;stem&gt;.pem</c> and <c>&lt;stem&gt;-key.pem</c> into <paramref name="directory"/> and returns their paths.</summary>
    public (string CertificatePath, string KeyPath) WriteTo(string directory, string stem)
    {
        string cert = Path.Combine(directory, stem + ".pem");
        string key = Path.Combine(directory, stem + "-key.pem");
        File.WriteAllText(cert, CertificatePem);
        File.WriteAllText(key, PrivateKeyPem);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (cert, key);
    }
}

/// <summary>A throwaway certificate authority for tests: issues server certificates for loopback and client certificates.</summary>
public sealed class TestCertificateAuthority : IDisposable
{
    private readonly ECDsa _key;

    private TestCertificateAuthority(ECDsa key, X509Certificate2 certificate)
    {
        _key = key;
        Certificate = certificate;
    }

    /// <summary>The CA certificate (with its private key).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate as PEM (what a client's CA bundle holds).</summary>
    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>Creates a new self-signed CA valid from an hour ago for a week.</summary>
    public static TestCertificateAuthority Create(string commonName = "nacelle test CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 cert = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(7));
        return new TestCertificateAuthority(key, cert);
    }

    /// <summary>Issues a TLS server certificate for 127.0.0.1, ::1 and localhost (plus <paramref name="extraDnsNames"/>).</summary>
    public PemPair IssueServerCertificate(params string[] extraDnsNames)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        foreach (string name in extraDnsNames)
            san.AddDnsName(name);
        return Issue("CN=127.0.0.1", san.Build(), new Oid("1.3.6.1.5.5.7.3.1"));
    }

    /// <summary>Issues a TLS client certificate (for mutual TLS).</summary>
    public PemPair IssueClientCertificate(string commonName = "nacelle test client") =>
        Issue($"CN={commonName}", null, new Oid("1.3.6.1.5.5.7.3.2"));

    private PemPair Issue(string subject, X509Extension? san, Oid usage)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        if (san is not null)
            request.CertificateExtensions.Add(san);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 cert = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key),
            now.AddHours(-1), now.AddDays(7), serial);
        return new PemPair(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Disposes the CA key.</summary>
    public void Dispose()
    {
        Certificate.Dispose();
        _key.Dispose();
    }
}
