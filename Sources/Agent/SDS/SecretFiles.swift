internal import Foundation
internal import X509

#if canImport(Glibc)
  internal import Glibc
#endif

/// Reading certificate material from files, with errors that name the file. Contents are checked to be PEM
/// of the right kind before they are served, so a half-written file is never pushed to the proxy.
enum SecretFiles {
  /// The file's bytes as text; an error names the path and what the file was for.
  static func read(_ path: String, role: String) throws(AgentError) -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw AgentError(.identity, "\(path): cannot read the \(role)")
    }
    guard let text = String(data: data, encoding: .utf8), !text.isEmpty else {
      throw AgentError(.identity, "\(path): the \(role) is empty or not text")
    }
    return text
  }

  /// Checks that `pem` holds one or more certificates and nothing unparsable.
  static func validateCertificates(_ pem: String, path: String, role: String) throws(AgentError) {
    let blocks = certificateBlocks(pem)
    guard !blocks.isEmpty else {
      throw AgentError(.identity, "\(path): the \(role) holds no PEM CERTIFICATE block")
    }
    for (index, block) in blocks.enumerated() {
      do {
        _ = try Certificate(pemEncoded: block)
      } catch {
        throw AgentError(.identity, "\(path): certificate \(index + 1) of the \(role) does not parse", cause: error)
      }
    }
  }

  /// Checks that `pem` holds a private key block (the key itself is never echoed in errors).
  static func validatePrivateKey(_ pem: String, path: String) throws(AgentError) {
    let markers = ["-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----"]
    guard markers.contains(where: { pem.contains($0) }), pem.contains("-----END ") else {
      throw AgentError(.identity, "\(path): not a PEM private key (PKCS#1, SEC1 or PKCS#8)")
    }
  }

  /// The `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` blocks of `pem`, in order.
  static func certificateBlocks(_ pem: String) -> [String] {
    let begin = "-----BEGIN CERTIFICATE-----"
    let end = "-----END CERTIFICATE-----"
    var blocks: [String] = []
    var rest = pem[...]
    while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
      blocks.append(String(rest[start.lowerBound..<stop.upperBound]))
      rest = rest[stop.upperBound...]
    }
    return blocks
  }

  /// Writes `text` to `path` atomically (temporary file + rename) with `mode`.
  static func writeAtomically(_ text: String, to path: String, mode: Int) throws(AgentError) {
    let temporary = path + ".tmp-\(getpid())"
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
      try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: temporary)
      guard rename(temporary, path) == 0 else {
        throw AgentError(.identity, "\(path): cannot rename \(temporary) over it (errno \(errno))")
      }
    } catch let error as AgentError {
      try? FileManager.default.removeItem(atPath: temporary)
      throw error
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)
      throw AgentError(.identity, "\(path): cannot write", cause: error)
    }
  }
}
