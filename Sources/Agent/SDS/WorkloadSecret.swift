package import EnvoyAPI
internal import Foundation

/// What one SDS resource carries: a certificate chain with its key, or trust anchors. PEM text, as Istio
/// serves it (inline bytes). The private key never appears in `description`.
package enum WorkloadSecret: Equatable, Sendable, CustomStringConvertible {
  case tlsCertificate(chainPEM: String, privateKeyPEM: String)
  case validationContext(trustedCAPEM: String)

  package static let typeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

  /// The Envoy `Secret` named `name`.
  package func envoySecret(name: String) -> Envoy_Extensions_TransportSockets_Tls_V3_Secret {
    var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
    secret.name = name
    switch self {
    case .tlsCertificate(let chain, let key):
      var certificate = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
      certificate.certificateChain.inlineBytes = Data(chain.utf8)
      certificate.privateKey.inlineBytes = Data(key.utf8)
      secret.tlsCertificate = certificate
    case .validationContext(let roots):
      var context = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
      context.trustedCa.inlineBytes = Data(roots.utf8)
      secret.validationContext = context
    }
    return secret
  }

  package var description: String {
    switch self {
    case .tlsCertificate(let chain, _): "tls_certificate(\(chain.utf8.count) bytes of chain, key redacted)"
    case .validationContext(let roots): "validation_context(\(roots.utf8.count) bytes of trusted CA)"
    }
  }
}
