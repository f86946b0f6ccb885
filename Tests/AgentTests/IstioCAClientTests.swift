import Foundation
import GRPCCore
import Logging
import TestSupport
import Testing

@testable import Agent

/// The Istio CA client against a fake istiod CA over real TLS (server name istiod.istio-system.svc reached
/// as `localhost`, as Istio maps it).
@Suite("Istio CA client")
struct IstioCAClientTests {
  let identity = WorkloadIdentity(trustDomain: "cluster.local", namespace: "shop", serviceAccount: "web")

  /// A pod root with istiod's root certificate and a token, and a client for `ca`.
  func client(
    _ ca: FakeIstioCA, token: String = "pod-token", keys: WorkloadKeyOptions = .init(), root: TempRoot,
    environment: [String: String] = [:]
  ) throws -> IstioCAClient {
    try root.write("var/run/secrets/istio/root-cert.pem", ca.rootPEM)
    try root.write("var/run/secrets/tokens/istio-token", token + "\n")
    let connection = try IstiodConnection.resolve(
      address: "localhost:\(ca.port)", variable: "CA_ADDR",
      environment: environment.merging(["ISTIO_META_CLUSTER_ID": "east", "CA_HEADER_X-Tenant": "blue"]) {
        a, _ in a
      },
      root: root.path)
    var client = IstioCAClient(
      connection: connection, keyOptions: keys, certSigner: "signer-a", logger: Logger(label: "ca-test"))
    client.initialBackoff = .milliseconds(5)
    return client
  }

  @Test func issuesASpiffeCertificateWithTokenClusterAndSigner() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let root = try TempRoot()
    defer { root.remove() }
    let rsa = try await client(ca, root: root).issue(for: identity, ttl: .seconds(3600))
    let ec = try await client(ca, keys: .init(algorithm: .ecdsaP384, pkcs8: true), root: root)
      .issue(for: identity, ttl: .seconds(600))
    await ca.stop()
    for issued in [rsa, ec] {
      let sans = try verifyWithOpenSSL(
        chain: issued.certificateChainPEM, root: issued.rootCertificatePEM, in: root.path)
      #expect(sans.contains("URI:spiffe://cluster.local/ns/shop/sa/web"))
      #expect(issued.rootCertificatePEM.hasPrefix(ca.rootPEM))
    }
    #expect(rsa.privateKeyPEM.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
    #expect(ec.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
    try Data(ec.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: root.path + "/ec.key"))
    let curve = try await onThread {
      try OpenSSLPKI.sh("openssl pkey -noout -text -in ec.key", in: root.path)
    }
    #expect(curve.contains("P-384"))
    #expect(abs(ec.notAfter.timeIntervalSince(ec.notBefore) - 600) < 120)
    let request = try #require(ca.requests.first)
    #expect(request.authorization == "Bearer pod-token")
    #expect(request.clusterID == "east")
    #expect(request.certSigner == "signer-a")
    #expect(request.validitySeconds == 3600)
    #expect(request.uriSANs == ["spiffe://cluster.local/ns/shop/sa/web"])
  }

  @Test func ecKeysAreSEC1UnlessPKCS8IsAskedFor() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let root = try TempRoot()
    defer { root.remove() }
    for (algorithm, curve) in [(WorkloadKeyOptions.Algorithm.ecdsaP256, "P-256"), (.ecdsaP384, "P-384")] {
      let issued = try await client(ca, keys: .init(algorithm: algorithm), root: root)
        .issue(for: identity, ttl: .seconds(600))
      #expect(issued.privateKeyPEM.hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
      try Data(issued.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: root.path + "/sec1.key"))
      try Data(issued.certificateChainPEM.utf8).write(to: URL(fileURLWithPath: root.path + "/sec1.pem"))
      // OpenSSL reads the key as SEC 1, checks it, and its public key is the certificate's (run off the
      // test pool: a blocking wait there starves the servers of tests running alongside).
      func openssl(_ arguments: String) async throws -> String {
        try await onThread { try Binaries.run("/bin/sh", ["-c", "cd \(root.path) && openssl \(arguments)"]) }
          .output
      }
      let text = try await openssl("ec -check -noout -text -in sec1.key 2>&1")
      #expect(text.contains("EC Key valid") && text.contains(curve), "\(text)")
      let keyPublic = try await openssl("ec -pubout -in sec1.key 2>/dev/null")
      let certPublic = try await openssl("x509 -pubkey -noout -in sec1.pem")
      #expect(keyPublic == certPublic && keyPublic.contains("BEGIN PUBLIC KEY"))
    }
    await ca.stop()
  }

  @Test func retriesTransientFailuresOnly() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let root = try TempRoot()
    defer { root.remove() }
    let client = try client(ca, root: root)
    ca.failNext([.unavailable, .internalError])
    _ = try await client.issue(for: identity, ttl: .seconds(60))
    #expect(ca.requests.count == 3)
    // Five transient failures use up the five calls Istio allows (retry.WithMax(5)).
    ca.failNext(Array(repeating: .unavailable, count: 5))
    await #expect(throws: AgentError.self) { try await client.issue(for: identity, ttl: .seconds(60)) }
    #expect(ca.requests.count == 8)
    // A wrong token is not retried.
    ca.expectToken("another")
    do {
      _ = try await client.issue(for: identity, ttl: .seconds(60))
      Issue.record("expected an error")
    } catch let error as AgentError {
      #expect(
        error.message.contains("CA_ADDR localhost:\(ca.port)") && error.message.contains("unauthenticated"))
    }
    #expect(ca.requests.count == 9)
    // The token file is read for every call.
    try root.write("var/run/secrets/tokens/istio-token", "another")
    _ = try await client.issue(for: identity, ttl: .seconds(60))
    await ca.stop()
  }

  /// istiod's certificate is issued for istiod.istio-system.svc: a client told (ISTIOD_SAN) to expect another
  /// name must refuse the handshake and send nothing, whatever the root says.
  @Test func aServerCertificateForAnotherNameIsRefused() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let root = try TempRoot()
    defer { root.remove() }
    let client = try client(ca, root: root, environment: ["ISTIOD_SAN": "istiod.elsewhere.svc"])
    do {
      _ = try await client.issue(for: identity, ttl: .seconds(60))
      Issue.record("expected an error")
    } catch let error as AgentError {
      #expect(error.message.contains("CA_ADDR localhost:\(ca.port)"), "\(error)")
    }
    #expect(ca.requests.isEmpty)
    // The same client setup with the right name is issued a certificate by the same server.
    _ = try await self.client(ca, root: root, environment: ["ISTIOD_SAN": "istiod.istio-system.svc"])
      .issue(for: identity, ttl: .seconds(60))
    #expect(ca.requests.count == 1)
    await ca.stop()
  }

  @Test func shortChainAndMissingRootAreErrors() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let root = try TempRoot()
    defer { root.remove() }
    let client = try client(ca, root: root)
    ca.returnLeafOnly(true)
    do {
      _ = try await client.issue(for: identity, ttl: .seconds(60))
      Issue.record("expected an error")
    } catch let error as AgentError {
      #expect(error.message.contains("chain of 1 certificate"))
    }
    try FileManager.default.removeItem(atPath: root.path + "/var/run/secrets/istio/root-cert.pem")
    do {
      _ = try await client.issue(for: identity, ttl: .seconds(60))
      Issue.record("expected an error")
    } catch let error as AgentError {
      #expect(error.message.contains("/var/run/secrets/istio/root-cert.pem"), "\(error)")
    }
    await ca.stop()
    #expect(throws: AgentError.self) {
      try IstiodConnection.resolve(address: "istiod", variable: "CA_ADDR", environment: [:], root: "/")
    }
    #expect(throws: AgentError.self) {
      try WorkloadKeyOptions.resolve(environment: ["WORKLOAD_RSA_KEY_SIZE": "1024"])
    }
    #expect(throws: AgentError.self) {
      try WorkloadKeyOptions.resolve(environment: ["ECC_SIGNATURE_ALGORITHM": "ECDSA", "ECC_CURVE": "P521"])
    }
  }
}
