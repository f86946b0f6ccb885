internal import EnvoyAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
package import Logging
internal import SwiftProtobuf
internal import X509

/// Where istiod is and how to talk to it — shared by the CA client and (later) the xDS proxy: TLS with
/// istiod's root (plaintext only on 15010), the server name Istio expects, the pod's bearer token re-read
/// for every call, the cluster ID and any `CA_HEADER_*` headers.
package struct IstiodConnection: Sendable, Equatable {
  package var host: String
  package var port: Int
  package var plaintext: Bool
  package var rootCertificatePath: String
  package var serverName: String
  package var tokenPath: String
  package var clusterID: String
  package var extraHeaders: [String: String]

  /// `address` is `host:port` (CA_ADDR or the discovery address); `variable` names it in errors.
  package static func resolve(
    address: String, variable: String, environment env: [String: String], root: String
  ) throws(AgentError) -> IstiodConnection {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
      (1...65535).contains(port), colon != address.startIndex
    else {
      throw AgentError(.invalidEnvironment, "\(variable): expected host:port, got \"\(address)\"")
    }
    var host = String(address[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    var serverName = host == "localhost" ? "istiod.istio-system.svc" : host
    if let san = env["ISTIOD_SAN"], !san.isEmpty { serverName = san }
    var headers: [String: String] = [:]
    for (key, value) in env where key.hasPrefix("CA_HEADER_") && key.count > "CA_HEADER_".count {
      headers[String(key.dropFirst("CA_HEADER_".count))] = value
    }
    return IstiodConnection(
      host: host, port: port, plaintext: port == 15010,
      rootCertificatePath: PodMetadata.join(root, "./var/run/secrets/istio/root-cert.pem"),
      serverName: serverName,
      tokenPath: PodMetadata.join(root, "./var/run/secrets/tokens/istio-token"),
      clusterID: env["ISTIO_META_CLUSTER_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? "Kubernetes",
      extraHeaders: headers)
  }

  /// The per-call metadata: the token (read now), the cluster ID, the extra headers.
  func metadata() throws(AgentError) -> Metadata {
    var metadata = Metadata()
    if FileManager.default.fileExists(atPath: tokenPath) {
      let token = try SecretFiles.read(tokenPath, role: "istio token").trimmingCharacters(in: .whitespacesAndNewlines)
      metadata.addString("Bearer \(token)", forKey: "authorization")
    }
    if !clusterID.isEmpty { metadata.addString(clusterID, forKey: "clusterid") }
    for (name, value) in extraHeaders.sorted(by: { $0.key < $1.key }) {
      metadata.addString(value, forKey: name.lowercased())
    }
    return metadata
  }

  /// The gRPC transport to istiod.
  func transport() throws(AgentError) -> HTTP2ClientTransport.Posix {
    var config = HTTP2ClientTransport.Posix.Config.defaults
    config.http2.authority = serverName
    let security: HTTP2ClientTransport.Posix.TransportSecurity
    if plaintext {
      security = .plaintext
    } else {
      guard FileManager.default.isReadableFile(atPath: rootCertificatePath) else {
        throw AgentError(.identity, "\(rootCertificatePath): istiod's root certificate is missing or unreadable")
      }
      let roots = rootCertificatePath
      security = .tls { tls in
        tls.trustRoots = .certificates([.file(path: roots, format: .pem)])
      }
    }
    do {
      return try HTTP2ClientTransport.Posix(
        target: .dns(host: host, port: port), transportSecurity: security, config: config)
    } catch {
      throw AgentError(.identity, "\(host):\(port): cannot set up the connection to istiod", cause: error)
    }
  }
}

/// Istio's CA protocol (`istio.v1.auth.IstioCertificateService/CreateCertificate`): a fresh key and CSR
/// for the workload's SPIFFE id, signed by istiod (or any Istio-compatible CA) at CA_ADDR. Retries as
/// pilot-agent does (go-grpc-middleware `WithMax(5)`): at most 5 calls in all, exponential backoff from
/// 100 ms with 10% jitter, only on transient codes.
package struct IstioCAClient: WorkloadCertificateIssuer {
  package var connection: IstiodConnection
  package var keyOptions: WorkloadKeyOptions
  /// ISTIO_META_CERT_SIGNER, sent as the request's `CertSigner` metadata.
  package var certSigner: String?
  /// Calls per signing, the first included.
  package var maxAttempts = 5
  package var initialBackoff: Duration = .milliseconds(100)
  private let logger: Logger

  package init(
    connection: IstiodConnection, keyOptions: WorkloadKeyOptions, certSigner: String?, logger: Logger
  ) {
    self.connection = connection
    self.keyOptions = keyOptions
    self.certSigner = certSigner
    self.logger = logger
  }

  static let retryable: Set<RPCError.Code> = [
    .cancelled, .deadlineExceeded, .resourceExhausted, .aborted, .internalError, .unavailable,
  ]

  package func issue(for identity: WorkloadIdentity, ttl: Duration) async throws -> IssuedCertificate {
    let key: WorkloadKey
    let csr: String
    do {
      key = try WorkloadKey(keyOptions)
      csr = try key.signingRequest(for: identity)
    } catch {
      throw AgentError(.identity, "cannot create the key and CSR for \(identity.spiffeID)", cause: error)
    }
    var request = Istio_V1_Auth_IstioCertificateRequest()
    request.csr = csr
    request.validityDuration = Int64(ttl.seconds)
    if let certSigner, !certSigner.isEmpty {
      var value = Google_Protobuf_Value()
      value.stringValue = certSigner
      request.metadata = Google_Protobuf_Struct(fields: ["CertSigner": value])
    }
    let target = "CA_ADDR \(connection.host):\(connection.port)"
    var delay = initialBackoff.seconds
    var attempt = 1
    while true {
      let started = Date()
      do {
        let chain = try await call(request)
        guard chain.count > 1 else {
          throw AgentError(
            .identity, "\(target): the CA returned a chain of \(chain.count) certificate(s); expected leaf and root")
        }
        var chainPEM = ""
        for certificate in chain {
          chainPEM += certificate
          if !certificate.hasSuffix("\n") { chainPEM += "\n" }
        }
        let leaf = SecretFiles.certificateBlocks(chain[0]).first ?? chain[0]
        let notAfter = (try? X509Dates.notAfter(pem: leaf)) ?? started.addingTimeInterval(ttl.seconds)
        return IssuedCertificate(
          certificateChainPEM: chainPEM, privateKeyPEM: key.pem, rootCertificatePEM: chain[chain.count - 1],
          notBefore: started, notAfter: notAfter)
      } catch let error as RPCError where Self.retryable.contains(error.code) && attempt < maxAttempts {
        attempt += 1
        let jittered = delay * Double.random(in: 0.9...1.1)
        logger.warning(
          "CSR signing failed; retrying",
          metadata: [
            "agent.identity.ca": "\(target)", "agent.identity.attempt": "\(attempt)",
            "error": "\(error.code): \(error.message)",
          ])
        try await Task.sleep(for: .milliseconds(Int(jittered * 1000)))
        delay *= 2
      } catch let error as RPCError {
        throw AgentError(.identity, "\(target): CreateCertificate failed with \(error.code): \(error.message)")
      }
    }
  }

  private func call(_ request: Istio_V1_Auth_IstioCertificateRequest) async throws -> [String] {
    let metadata = try connection.metadata()
    let transport = try connection.transport()
    return try await withGRPCClient(transport: transport) { client in
      let ca = Istio_V1_Auth_IstioCertificateService.Client(wrapping: client)
      var options = CallOptions.defaults
      options.timeout = .seconds(10)
      return try await ca.createCertificate(request, metadata: metadata, options: options) { response in
        try response.message.certChain
      }
    }
  }
}

/// Validity of an issued certificate, read back from its PEM.
enum X509Dates {
  static func notAfter(pem: String) throws -> Date {
    try Certificate(pemEncoded: pem).notValidAfter
  }
}
