package import Foundation

/// A workload's SPIFFE identity: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
package struct WorkloadIdentity: Sendable, Hashable {
  package var trustDomain: String
  package var namespace: String
  package var serviceAccount: String

  package init(trustDomain: String, namespace: String, serviceAccount: String) {
    self.trustDomain = trustDomain
    self.namespace = namespace
    self.serviceAccount = serviceAccount
  }

  package var spiffeID: String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }
}

/// What a certificate authority hands back: the chain served as `default` (leaf first), its private key,
/// and the trust anchors served as `ROOTCA`.
package struct IssuedCertificate: Sendable {
  package var certificateChainPEM: String
  package var privateKeyPEM: String
  package var rootCertificatePEM: String
  package var notBefore: Date
  package var notAfter: Date

  package init(
    certificateChainPEM: String, privateKeyPEM: String, rootCertificatePEM: String, notBefore: Date,
    notAfter: Date
  ) {
    self.certificateChainPEM = certificateChainPEM
    self.privateKeyPEM = privateKeyPEM
    self.rootCertificatePEM = rootCertificatePEM
    self.notBefore = notBefore
    self.notAfter = notAfter
  }
}

/// Issues workload certificates (Istio's CA, or the local CA when there is no control plane).
package protocol WorkloadCertificateIssuer: Sendable {
  func issue(for identity: WorkloadIdentity, ttl: Duration) async throws -> IssuedCertificate
}
