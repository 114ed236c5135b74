using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Pool.Internal;

/// <summary>
/// The TLS certificate of one pool whose workers are on other machines: a self-signed ECDSA P-256 certificate made
/// when the pool starts, held in memory only, valid for a week. Workers trust it by its SHA-256 (<see cref="Hash"/>),
/// which travels with the pool's secret in their setup, not by any authority: only this process has its key.
/// </summary>
internal sealed class PoolCertificate : IDisposable
{
    private PoolCertificate(X509Certificate2 certificate)
    {
        Certificate = certificate;
        Hash = certificate.GetCertHash(HashAlgorithmName.SHA256);
    }

    public X509Certificate2 Certificate { get; }

    public byte[] Hash { get; }

    public static PoolCertificate Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=processpool", key, HashAlgorithmName.SHA256);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 created = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(7));
        // Through PKCS#12 and back: a certificate whose key came from CreateSelfSigned cannot serve TLS on every platform.
        return new PoolCertificate(X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), password: null));
    }

    public void Dispose() => Certificate.Dispose();
}
