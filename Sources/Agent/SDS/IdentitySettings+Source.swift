package import Logging

extension IdentitySettings {
  /// The secret cache's source for this provider.
  package func makeSource(logger: Logger) throws(AgentError) -> WorkloadCertificateSource {
    switch provider {
    case .files(let chain, let key, let root):
      logger.info("serving mounted workload certificates", metadata: ["agent.identity.chain": "\(chain)"])
      return .files(chainPath: chain, keyPath: key, rootPath: root)
    case .istioCA(let address):
      // The Istio CA client lands with its own commit; until then the agent runs and says why it has no
      // certificate.
      logger.warning(
        "certificates from Istio's CA are not implemented yet; default and ROOTCA cannot be served",
        metadata: ["agent.identity.ca": "\(address)"])
      return .issuer(UnavailableIssuer(address: address), identity, description: "Istio CA \(address)")
    case .localCA(let directory):
      let authority = try LocalCertificateAuthority(directory: directory, trustDomain: identity.trustDomain)
      logger.info(
        "no control plane: certificates come from the local CA", metadata: ["agent.identity.ca": "\(directory)"])
      return .issuer(authority, identity, description: "local CA \(directory)")
    }
  }
}

/// The Istio CA client is not part of this build yet.
struct UnavailableIssuer: WorkloadCertificateIssuer {
  var address: String
  func issue(for identity: WorkloadIdentity, ttl: Duration) async throws -> IssuedCertificate {
    throw AgentError(.identity, "CA_ADDR \(address): the Istio CA client is not implemented yet")
  }
}
