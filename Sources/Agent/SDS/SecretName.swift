/// An SDS resource name as the proxy asks for it, in Istio's vocabulary (`pkg/security/security.go`).
package enum SecretName: Hashable, Sendable, CustomStringConvertible {
  /// `default`: the workload's certificate chain and private key.
  case workloadCertificate
  /// `ROOTCA`: the trust anchors that peer certificates are validated against.
  case rootCertificate
  /// `file-cert:<certificate chain path>~<private key path>`: a certificate and key read from files.
  case fileCertificate(chainPath: String, keyPath: String)
  /// `file-root:<path>`: trust anchors read from a file.
  case fileRoot(path: String)
  /// `file-root:system`: the operating system's CA bundle.
  case systemRoots

  package static let workloadCertificateName = "default"
  package static let rootCertificateName = "ROOTCA"

  /// The OS CA bundles `file-root:system` looks for, first existing wins (as Istio).
  package static let systemRootCandidates = [
    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem",
  ]

  /// Parses a requested name; nil for a name Pilotfish does not serve (the stream logs it and skips it).
  package init?(_ name: String) {
    switch name {
    case Self.workloadCertificateName: self = .workloadCertificate
    case Self.rootCertificateName: self = .rootCertificate
    case "file-root:system": self = .systemRoots
    default:
      if name.hasPrefix("file-cert:") {
        let paths = name.dropFirst("file-cert:".count).split(separator: "~", omittingEmptySubsequences: false)
        guard paths.count == 2, !paths[0].isEmpty, !paths[1].isEmpty else { return nil }
        self = .fileCertificate(chainPath: String(paths[0]), keyPath: String(paths[1]))
      } else if name.hasPrefix("file-root:") {
        let path = name.dropFirst("file-root:".count)
        guard !path.isEmpty else { return nil }
        self = .fileRoot(path: String(path))
      } else {
        return nil
      }
    }
  }

  /// The resource name on the wire.
  package var description: String {
    switch self {
    case .workloadCertificate: Self.workloadCertificateName
    case .rootCertificate: Self.rootCertificateName
    case .fileCertificate(let chain, let key): "file-cert:\(chain)~\(key)"
    case .fileRoot(let path): "file-root:\(path)"
    case .systemRoots: "file-root:system"
    }
  }
}
