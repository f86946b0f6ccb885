package import Crypto
internal import EnvoyAPI
package import Foundation
package import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import Synchronization
package import X509

/// A throwaway CA for tests: an ECDSA P-256 root that signs leaves and server certificates.
package struct TestCertificateAuthority: Sendable {
  package let root: Certificate
  package let rootKey: P256.Signing.PrivateKey
  package var rootPEM: String { (try? root.serializeAsPEM().pemString) ?? "" }

  package init(name: String = "pilotfish test root") throws {
    rootKey = P256.Signing.PrivateKey()
    let subject = try DistinguishedName { CommonName(name) }
    let now = Date()
    root = try Certificate(
      version: .v3, serialNumber: .init(), publicKey: .init(rootKey.publicKey),
      notValidBefore: now - 300, notValidAfter: now + 86_400, issuer: subject, subject: subject,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
      },
      issuerPrivateKey: .init(rootKey))
  }

  /// A server certificate (DNS SAN `dnsName`) with its key, both DER.
  package func serverCertificate(dnsName: String) throws -> (certificate: [UInt8], key: [UInt8]) {
    let key = P256.Signing.PrivateKey()
    let now = Date()
    let certificate = try Certificate(
      version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 300,
      notValidAfter: now + 86_400, issuer: root.subject,
      subject: try DistinguishedName { CommonName(dnsName) },
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.notCertificateAuthority)
        try ExtendedKeyUsage([.serverAuth])
        SubjectAlternativeNames([.dnsName(dnsName)])
      },
      issuerPrivateKey: .init(rootKey))
    return (try certificate.serializeAsPEM().derBytes, Array(key.derRepresentation))
  }
}

/// An Istio CA for tests: `istio.v1.auth.IstioCertificateService/CreateCertificate` over TLS (server name
/// `istiod.istio-system.svc`) on 127.0.0.1, behaving like istiod: the bearer token must match, the CSR's
/// signature must verify, its URI SAN is copied into a leaf valid for the requested duration, and the chain
/// `[leaf, root]` comes back. Records every request; can fail the next calls or return a short chain.
package final class FakeIstioCA: Sendable {
  package struct Recorded: Sendable {
    package var uriSANs: [String]
    package var validitySeconds: Int64
    package var authorization: String?
    package var clusterID: String?
    package var certSigner: String?
  }

  package let authority: TestCertificateAuthority
  package let port: Int
  private let state: StateBox
  private let server: GRPCServer<HTTP2ServerTransport.Posix>
  private let task: Task<Void, any Error>

  final class StateBox: Sendable {
    let mutex: Mutex<State>
    init(_ state: State) { mutex = Mutex(state) }
    func withLock<R>(_ body: (inout State) -> R) -> R { mutex.withLock { body(&$0) } }
  }

  struct State {
    var expectedToken: String
    var failures: [RPCError.Code] = []
    var leafOnly = false
    var requests: [Recorded] = []
  }

  package static let serverName = "istiod.istio-system.svc"

  package init(expectedToken: String) async throws {
    let authority = try TestCertificateAuthority()
    self.authority = authority
    let state = StateBox(State(expectedToken: expectedToken))
    self.state = state
    let serverCertificate = try authority.serverCertificate(dnsName: Self.serverName)
    let server = GRPCServer(
      transport: .http2NIOPosix(
        address: .ipv4(host: "127.0.0.1", port: 0),
        transportSecurity: .tls(
          certificateChain: [.bytes(serverCertificate.certificate, format: .der)],
          privateKey: .bytes(serverCertificate.key, format: .der))),
      services: [Service(authority: authority, state: state)])
    self.server = server
    task = Task { try await server.serve() }
    guard let address = try await server.listeningAddress?.ipv4 else {
      throw RPCError(code: .internalError, message: "fake CA did not start")
    }
    port = address.port
  }

  package var requests: [Recorded] { state.withLock { $0.requests } }
  package var rootPEM: String { authority.rootPEM }

  /// The next calls fail with these codes, in order.
  package func failNext(_ codes: [RPCError.Code]) { state.withLock { $0.failures += codes } }
  package func returnLeafOnly(_ value: Bool) { state.withLock { $0.leafOnly = value } }
  package func expectToken(_ token: String) { state.withLock { $0.expectedToken = token } }

  package func stop() async {
    server.beginGracefulShutdown()
    _ = try? await task.value
  }

  private struct Service: Istio_V1_Auth_IstioCertificateService.ServiceProtocol {
    let authority: TestCertificateAuthority
    let state: StateBox

    func createCertificate(
      request: ServerRequest<Istio_V1_Auth_IstioCertificateRequest>, context: ServerContext
    ) async throws -> ServerResponse<Istio_V1_Auth_IstioCertificateResponse> {
      let message = request.message
      let authorization = request.metadata[stringValues: "authorization"].first { _ in true }
      let csr = try CertificateSigningRequest(pemEncoded: message.csr)
      var sans: [String] = []
      for case .uniformResourceIdentifier(let uri) in try csr.attributes.extensionRequest?.extensions
        .subjectAlternativeNames ?? SubjectAlternativeNames()
      {
        sans.append(uri)
      }
      let recorded = Recorded(
        uriSANs: sans, validitySeconds: message.validityDuration, authorization: authorization,
        clusterID: request.metadata[stringValues: "clusterid"].first { _ in true },
        certSigner: message.metadata.fields["CertSigner"]?.stringValue)
      let (failure, expected, leafOnly) = state.withLock { state in
        state.requests.append(recorded)
        return (
          state.failures.isEmpty ? nil : state.failures.removeFirst(), state.expectedToken, state.leafOnly
        )
      }
      if let failure { throw RPCError(code: failure, message: "injected failure") }
      guard authorization == "Bearer \(expected)" else {
        throw RPCError(code: .unauthenticated, message: "authenticate failure")
      }
      guard csr.publicKey.isValidSignature(csr.signature, for: csr), !sans.isEmpty else {
        throw RPCError(code: .invalidArgument, message: "CSR signature or SAN invalid")
      }
      let now = Date()
      let leaf = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: csr.publicKey, notValidBefore: now - 60,
        notValidAfter: now + TimeInterval(message.validityDuration), issuer: authority.root.subject,
        subject: DistinguishedName(), signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
          Critical(BasicConstraints.notCertificateAuthority)
          Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
          try ExtendedKeyUsage([.serverAuth, .clientAuth])
          Critical(SubjectAlternativeNames(sans.map { .uniformResourceIdentifier($0) }))
        },
        issuerPrivateKey: .init(authority.rootKey))
      var response = Istio_V1_Auth_IstioCertificateResponse()
      response.certChain = [try leaf.serializeAsPEM().pemString + "\n"]
      if !leafOnly { response.certChain.append(authority.rootPEM + "\n") }
      return ServerResponse(message: response)
    }
  }
}
