import Foundation
import TestSupport
import Testing

@testable import Agent

/// The agent's SDS socket as the proxy uses it, with a grpcio client: certificates from the local CA
/// (no control plane), rotation pushed on the open stream, OUTPUT_CERTS, mounted certificates winning.
@Suite("pilotfish proxy sidecar: workload identity over SDS")
struct SidecarIdentityTests {
  static func socket(_ sidecar: SidecarUnderTest) -> String {
    sidecar.root.path + "/var/run/secrets/workload-spiffe-uds/socket"
  }

  /// Runs the SDS client against the sidecar's socket once the socket is there.
  static func client(
    _ sidecar: SidecarUnderTest, names: [String], responses: Int = 1, timeout: Int = 20
  ) async throws -> (status: Int32, output: String, responses: [SDSResponse]) {
    let socket = Self.socket(sidecar)
    #expect(await eventually { FileManager.default.fileExists(atPath: socket) }, "\(sidecar.stderr)")
    let out = sidecar.root.path + "/sds-client-" + UUID().uuidString.prefix(6)
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let result = try await onThread {
      try Binaries.run(
        "/usr/bin/env",
        [
          "python3", Binaries.helper("sds_client.py"), "--socket", socket, "--names",
          names.joined(separator: ","), "--responses", "\(responses)", "--out", out, "--timeout",
          "\(timeout)",
        ])
    }
    return (result.status, result.output, try readResponses(SDSResponse.self, in: out))
  }

  @Test func localCAIssuesRotatesAndOutputsCertificates() async throws {
    let sidecar = try SidecarUnderTest(environment: [
      "SERVICE_ACCOUNT": "web", "SECRET_TTL": "6s", "OUTPUT_CERTS": "./out-certs",
    ])
    defer { sidecar.cleanUp() }
    // The first response, then the rotation at about half of the 6 s lifetime, pushed on the same stream.
    let result = try await Self.client(sidecar, names: ["default", "ROOTCA"], responses: 2)
    #expect(result.status == 0, "\(result.output)\n\(sidecar.stderr)")
    try #require(result.responses.count == 2)
    let first = result.responses[0]
    let chain = try #require(first.resource("default")?.chain)
    let root = try #require(first.resource("ROOTCA")?.root)
    // Checked after the rotation arrived, so the 6 s certificates may be past their lifetime by now.
    let sans = try verifyWithOpenSSL(chain: chain, root: root, in: sidecar.root.path, checkTime: false)
    #expect(sans.contains("URI:spiffe://cluster.local/ns/shop/sa/web"), "\(sans)")
    let pushed = result.responses[1]
    #expect(pushed.resources.map(\.name) == ["default"])
    let rotated = try #require(pushed.resource("default")?.chain)
    #expect(rotated != chain)
    _ = try verifyWithOpenSSL(chain: rotated, root: root, in: sidecar.root.path, checkTime: false)

    let socketMode = try FileManager.default.attributesOfItem(atPath: Self.socket(sidecar))[.posixPermissions]
    #expect(socketMode as? Int == 0o600)
    let out = sidecar.root.path + "/out-certs"
    let keyMode = try FileManager.default.attributesOfItem(atPath: out + "/key.pem")[.posixPermissions]
    #expect(keyMode as? Int == 0o600)
    #expect(FileManager.default.fileExists(atPath: out + "/cert-chain.pem"))
    #expect((try? String(contentsOfFile: out + "/root-cert.pem", encoding: .utf8)) == root)
    // The private key is never logged.
    let key = try #require(first.resource("default")?.key)
    let keyBody = key.split(separator: "\n").dropFirst().first.map(String.init) ?? key
    #expect(!sidecar.stderr.contains(keyBody) && !sidecar.stdout.contains(keyBody))
  }

  @Test func podsPointingAtOneLocalCAShareItsRoot() async throws {
    let shared = NSTemporaryDirectory() + "pf-shared-ca-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: shared) }
    let first = try SidecarUnderTest(environment: ["PILOTFISH_LOCAL_CA_DIR": shared])
    defer { first.cleanUp() }
    let second = try SidecarUnderTest(
      environment: ["PILOTFISH_LOCAL_CA_DIR": shared, "POD_NAMESPACE": "billing", "SERVICE_ACCOUNT": "api"])
    defer { second.cleanUp() }
    let a = try await Self.client(first, names: ["default", "ROOTCA"])
    let b = try await Self.client(second, names: ["default", "ROOTCA"])
    let rootA = try #require(a.responses.first?.resource("ROOTCA")?.root, "\(a.output)\n\(first.stderr)")
    let rootB = try #require(b.responses.first?.resource("ROOTCA")?.root, "\(b.output)\n\(second.stderr)")
    #expect(rootA == rootB)
    let chainB = try #require(b.responses.first?.resource("default")?.chain)
    let sans = try verifyWithOpenSSL(chain: chainB, root: rootA, in: second.root.path)
    #expect(sans.contains("URI:spiffe://cluster.local/ns/billing/sa/api"), "\(sans)")
  }

  @Test func istioCAIssuesThroughTheAgent() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let sidecar = try SidecarUnderTest(
      environment: [
        "CA_ADDR": "localhost:\(ca.port)", "SERVICE_ACCOUNT": "web", "ISTIO_META_CLUSTER_ID": "east",
      ],
      start: false)
    defer { sidecar.cleanUp() }
    try sidecar.root.write("var/run/secrets/istio/root-cert.pem", ca.rootPEM)
    try sidecar.root.write("var/run/secrets/tokens/istio-token", "pod-token")
    try sidecar.process.run()
    let result = try await Self.client(sidecar, names: ["default", "ROOTCA"])
    await ca.stop()
    let response = try #require(result.responses.first, "\(result.output)\n\(sidecar.stderr)")
    let chain = try #require(response.resource("default")?.chain)
    let root = try #require(response.resource("ROOTCA")?.root)
    #expect(root.hasPrefix(ca.rootPEM))
    let sans = try verifyWithOpenSSL(chain: chain, root: root, in: sidecar.root.path)
    #expect(sans.contains("URI:spiffe://cluster.local/ns/shop/sa/web"))
    #expect(ca.requests.first?.clusterID == "east")
    #expect(ca.requests.first?.validitySeconds == 86_400)
  }

  /// With a discovery address: certificates from Istio's CA at that address (no CA_ADDR), and the xDS proxy
  /// on ./etc/istio/proxy/XDS relaying over TLS with the token — the fake CA serves no ADS, so the relayed
  /// stream comes back UNIMPLEMENTED from istiod's side, which proves the hop.
  @Test func discoveryAddressGivesTheCAAndTheXDSProxy() async throws {
    let ca = try await FakeIstioCA(expectedToken: "pod-token")
    let adminPort = freePort()
    let sidecar = try SidecarUnderTest(
      environment: ["SERVICE_ACCOUNT": "web"],
      proxyConfig:
        #"{"proxyAdminPort": \#(adminPort), "discoveryAddress": "localhost:\#(ca.port)", "terminationDrainDuration": "1s"}"#,
      start: false)
    defer { sidecar.cleanUp() }
    try sidecar.root.write("var/run/secrets/istio/root-cert.pem", ca.rootPEM)
    try sidecar.root.write("var/run/secrets/tokens/istio-token", "pod-token")
    try sidecar.process.run()
    let result = try await Self.client(sidecar, names: ["default"])
    #expect(result.responses.first?.resource("default")?.chain != nil, "\(result.output)\n\(sidecar.stderr)")
    let xds = sidecar.root.path + "/etc/istio/proxy/XDS"
    #expect(await eventually { FileManager.default.fileExists(atPath: xds) }, "\(sidecar.stderr)")
    let mode = try FileManager.default.attributesOfItem(atPath: xds)[.posixPermissions] as? Int
    #expect(mode == 0o600)
    let out = sidecar.root.path + "/ads-out"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let relayed = try await onThread {
      try Binaries.run(
        "/usr/bin/env",
        [
          "python3", Binaries.helper("ads_client.py"), "--socket", xds, "--type",
          "type.googleapis.com/envoy.config.cluster.v3.Cluster", "--out", out, "--timeout", "15",
        ])
    }
    await ca.stop()
    #expect(sidecar.process.isRunning, "the agent died: \(sidecar.stderr)")
    #expect(relayed.status == 3)
    #expect(relayed.output.contains("UNIMPLEMENTED"), "\(relayed.output)\n\(sidecar.stderr)")
  }

  @Test func mountedCertificatesWin() async throws {
    let sidecar = try SidecarUnderTest(start: false)
    defer { sidecar.cleanUp() }
    let pki = try OpenSSLPKI(directory: sidecar.root.path + "/pki")
    try pki.leaf("leaf", spiffe: "spiffe://example.org/ns/shop/sa/mounted")
    try await onThread {
      try OpenSSLPKI.sh(
        "mkdir -p etc/certs && cp pki/leaf.pem etc/certs/cert-chain.pem && cp pki/leaf.key etc/certs/key.pem"
          + " && cp pki/ca.pem etc/certs/root-cert.pem", in: sidecar.root.path)
    }
    try sidecar.process.run()
    let result = try await Self.client(sidecar, names: ["default", "ROOTCA"])
    let response = try #require(result.responses.first, "\(result.output)\n\(sidecar.stderr)")
    #expect(
      response.resource("default")?.chain
        == (try String(contentsOfFile: sidecar.root.path + "/pki/leaf.pem", encoding: .utf8)))
    // No local CA was created: the mounted files are the source.
    #expect(!FileManager.default.fileExists(atPath: sidecar.root.path + "/local-ca"))
  }
}
