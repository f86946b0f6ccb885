import Foundation
import TestSupport
import Testing

@testable import Agent

@Suite("Local CA (no control plane)")
struct LocalCertificateAuthorityTests {
  func directory() -> String { NSTemporaryDirectory() + "pf-local-ca-" + UUID().uuidString.prefix(8) }

  @Test func concurrentAgentsCreateOneRootAndLeavesVerify() async throws {
    let dir = directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let roots = try await withThrowingTaskGroup(of: String.self) { group in
      for _ in 0..<4 {
        group.addTask {
          try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local").rootCertificatePEM
        }
      }
      return try await group.reduce(into: Set<String>()) { $0.insert($1) }
    }
    #expect(roots.count == 1)
    let mode = { (path: String) in
      try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }
    #expect(try mode(dir) == 0o700)
    #expect(try mode(dir + "/root-key.pem") == 0o600)

    let ca = try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local")
    let issued = try await ca.issue(
      for: WorkloadIdentity(trustDomain: "cluster.local", namespace: "shop", serviceAccount: "web"),
      ttl: .seconds(3600))
    let text = try verifyWithOpenSSL(
      chain: issued.certificateChainPEM, root: issued.rootCertificatePEM, in: dir)
    #expect(text.contains("URI:spiffe://cluster.local/ns/shop/sa/web"))
    #expect(abs(issued.notAfter.timeIntervalSince(issued.notBefore) - 3660) < 2)
    try Data(issued.certificateChainPEM.utf8).write(to: URL(fileURLWithPath: dir + "/leaf.pem"))
    let details = try await onThread { try OpenSSLPKI.sh("openssl x509 -noout -text -in leaf.pem", in: dir) }
    #expect(details.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
    #expect(details.contains("CA:FALSE"))
    // The key matches the certificate.
    try Data(issued.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: dir + "/leaf.key"))
    let fromCert = try await onThread {
      try OpenSSLPKI.sh("openssl x509 -noout -pubkey -in leaf.pem", in: dir)
    }
    let fromKey = try await onThread { try OpenSSLPKI.sh("openssl pkey -pubout -in leaf.key", in: dir) }
    #expect(fromCert == fromKey)
  }

  @Test func brokenStateIsAnErrorNamingTheFile() throws {
    let dir = directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local")
    let original = try String(contentsOfFile: dir + "/root-cert.pem", encoding: .utf8)
    // Not a certificate.
    try "garbage".write(toFile: dir + "/root-cert.pem", atomically: true, encoding: .utf8)
    #expect {
      try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local")
    } throws: { ($0 as? AgentError)?.message.contains(dir + "/root-cert.pem") == true }
    // A key of another CA.
    let other = directory()
    defer { try? FileManager.default.removeItem(atPath: other) }
    _ = try LocalCertificateAuthority(directory: other, trustDomain: "cluster.local")
    try original.write(toFile: dir + "/root-cert.pem", atomically: true, encoding: .utf8)
    try FileManager.default.removeItem(atPath: dir + "/root-key.pem")
    try FileManager.default.copyItem(atPath: other + "/root-key.pem", toPath: dir + "/root-key.pem")
    #expect {
      try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local")
    } throws: { ($0 as? AgentError)?.message.contains("does not match") == true }
    // Half a CA is never silently replaced.
    try FileManager.default.removeItem(atPath: dir + "/root-key.pem")
    #expect {
      try LocalCertificateAuthority(directory: dir, trustDomain: "cluster.local")
    } throws: { ($0 as? AgentError)?.message.contains(dir + "/root-key.pem") == true }
  }
}
