package import Logging

extension IdentitySettings {
  /// The secret cache's source for this provider.
  package func makeSource(logger: Logger) throws(AgentError) -> WorkloadCertificateSource {
    switch provider {
    case .files(let chain, let key, let root):
      logger.info("serving mounted workload certificates", metadata: ["agent.identity.chain": "\(chain)"])
      return .files(chainPath: chain, keyPath: key, rootPath: root)
    case .istioCA(let address):
      let variable = environment["CA_ADDR"].map { $0.isEmpty ? "discoveryAddress" : "CA_ADDR" } ?? "discoveryAddress"
      let connection = try IstiodConnection.resolve(
        address: address, variable: variable, environment: environment, root: root)
      let client = IstioCAClient(
        connection: connection, keyOptions: try WorkloadKeyOptions.resolve(environment: environment),
        certSigner: environment["ISTIO_META_CERT_SIGNER"], logger: logger)
      logger.info(
        "certificates come from Istio's CA", metadata: ["agent.identity.ca": "\(address)"])
      return .issuer(client, identity, description: "Istio CA \(address)")
    case .localCA(let directory):
      let authority = try LocalCertificateAuthority(directory: directory, trustDomain: identity.trustDomain)
      logger.info(
        "no control plane: certificates come from the local CA", metadata: ["agent.identity.ca": "\(directory)"])
      return .issuer(authority, identity, description: "local CA \(directory)")
    }
  }
}

