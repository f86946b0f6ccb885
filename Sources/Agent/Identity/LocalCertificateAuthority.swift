internal import Crypto
internal import Foundation
internal import SwiftASN1
internal import X509

#if canImport(Glibc)
  internal import Glibc
#endif

/// The CA for running without a control plane: a root created once in a state directory and shared by
/// every agent that points at that directory (so local pods trust each other), issuing short-lived SPIFFE
/// leaf certificates in-process.
///
/// Invariants: the root is created under an exclusive `flock` and written with atomic renames, so two agents
/// starting together end up with the same root; an existing root is never replaced — a corrupt or mismatched
/// one is an error naming the file; the root key is the only private key written to disk (0600, in a 0700
/// directory), and no key ever reaches a log or an error message.
package struct LocalCertificateAuthority: WorkloadCertificateIssuer {
  package let directory: String
  private let rootCertificate: Certificate
  private let rootKey: P256.Signing.PrivateKey
  package let rootCertificatePEM: String

  package static let certificateFile = "root-cert.pem"
  package static let keyFile = "root-key.pem"
  static let rootLifetime: TimeInterval = 10 * 365 * 86_400

  /// Loads the root from `directory`, creating it (and the directory) on first use.
  package init(directory: String, trustDomain: String) throws(AgentError) {
    self.directory = directory
    try SecretFiles.createPrivateDirectory(directory)
    let lockPath = directory + "/.lock"
    let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
    guard lock >= 0 else {
      throw AgentError(.identity, "\(lockPath): cannot open the local CA lock (\(String(cString: strerror(errno))))")
    }
    defer { close(lock) }
    guard flock(lock, LOCK_EX) == 0 else {
      throw AgentError(.identity, "\(lockPath): cannot lock the local CA (\(String(cString: strerror(errno))))")
    }
    defer { flock(lock, LOCK_UN) }

    let certificatePath = directory + "/" + Self.certificateFile
    let keyPath = directory + "/" + Self.keyFile
    let haveCertificate = FileManager.default.fileExists(atPath: certificatePath)
    let haveKey = FileManager.default.fileExists(atPath: keyPath)
    if haveCertificate || haveKey {
      guard haveCertificate, haveKey else {
        throw AgentError(
          .identity,
          "\(haveCertificate ? keyPath : certificatePath): missing while its pair exists; the local CA is"
            + " incomplete — restore it or remove \(directory) to start a new root (every pod must then restart)")
      }
      (rootCertificate, rootKey, rootCertificatePEM) = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
    } else {
      (rootCertificate, rootKey, rootCertificatePEM) = try Self.create(
        trustDomain: trustDomain, certificatePath: certificatePath, keyPath: keyPath)
    }
  }

  private static func load(
    certificatePath: String, keyPath: String
  ) throws(AgentError) -> (Certificate, P256.Signing.PrivateKey, String) {
    let certificatePEM = try SecretFiles.read(certificatePath, role: "local CA root certificate")
    let keyPEM = try SecretFiles.read(keyPath, role: "local CA root key")
    let certificate: Certificate
    do {
      certificate = try Certificate(pemEncoded: certificatePEM)
    } catch {
      throw AgentError(.identity, "\(certificatePath): the local CA root certificate does not parse", cause: error)
    }
    let key: P256.Signing.PrivateKey
    do {
      key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
    } catch {
      throw AgentError(.identity, "\(keyPath): the local CA root key is not a P-256 private key in PEM")
    }
    guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
      throw AgentError(.identity, "\(keyPath): the local CA root key does not match \(certificatePath)")
    }
    return (certificate, key, certificatePEM)
  }

  private static func create(
    trustDomain: String, certificatePath: String, keyPath: String
  ) throws(AgentError) -> (Certificate, P256.Signing.PrivateKey, String) {
    let key = P256.Signing.PrivateKey()
    let now = Date()
    do {
      let name = try DistinguishedName {
        OrganizationName("Pilotfish")
        CommonName("Pilotfish local CA for \(trustDomain)")
      }
      let certificate = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
        notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(rootLifetime),
        issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
          Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
          Critical(KeyUsage(keyCertSign: true, cRLSign: true))
          SubjectKeyIdentifier(hash: .init(key.publicKey))
        },
        issuerPrivateKey: .init(key))
      let pem = try certificate.serializeAsPEM().pemString + "\n"
      // The key first: a certificate without its key would make the CA unusable.
      try SecretFiles.writeAtomically(key.pemRepresentation + "\n", to: keyPath, mode: 0o600)
      try SecretFiles.writeAtomically(pem, to: certificatePath, mode: 0o644)
      return (certificate, key, pem)
    } catch let error as AgentError {
      throw error
    } catch {
      throw AgentError(.identity, "cannot create the local CA root in \((certificatePath as NSString).deletingLastPathComponent)", cause: error)
    }
  }

  /// A fresh P-256 leaf for `identity`, valid for `ttl` (from a minute ago, for clock skew).
  package func issue(for identity: WorkloadIdentity, ttl: Duration) async throws -> IssuedCertificate {
    let key = P256.Signing.PrivateKey()
    let now = Date()
    let notBefore = now.addingTimeInterval(-60)
    let notAfter = now.addingTimeInterval(ttl.seconds)
    do {
      let leaf = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: notBefore,
        notValidAfter: notAfter, issuer: rootCertificate.subject, subject: DistinguishedName(),
        signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
          Critical(BasicConstraints.notCertificateAuthority)
          Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
          try ExtendedKeyUsage([.serverAuth, .clientAuth])
          // With an empty subject the SAN extension must be critical (RFC 5280 §4.2.1.6).
          Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity.spiffeID)]))
          AuthorityKeyIdentifier(keyIdentifier: try rootCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        },
        issuerPrivateKey: .init(rootKey))
      return IssuedCertificate(
        certificateChainPEM: try leaf.serializeAsPEM().pemString + "\n", privateKeyPEM: key.pemRepresentation + "\n",
        rootCertificatePEM: rootCertificatePEM, notBefore: notBefore, notAfter: notAfter)
    } catch {
      throw AgentError(.identity, "local CA \(directory): cannot issue a certificate for \(identity.spiffeID)", cause: error)
    }
  }
}
