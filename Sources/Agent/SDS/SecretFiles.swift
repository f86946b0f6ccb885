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

  /// Writes `text` to `path` atomically with `mode` from the first byte: a fresh temporary name beside it is
  /// created with `O_CREAT|O_EXCL|O_NOFOLLOW` and `mode` (then `fchmod`, so the umask cannot widen or narrow
  /// it) before anything is written, then renamed over `path`. A key is never readable by others, not even
  /// for the instant a default-umask temporary file would have been.
  static func writeAtomically(_ text: String, to path: String, mode: Int) throws(AgentError) {
    let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
    guard descriptor >= 0 else {
      throw AgentError(.identity, "\(path): cannot create \(temporary) (\(String(cString: strerror(errno))))")
    }
    func fail(_ what: String) -> AgentError {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      unlink(temporary)
      return AgentError(.identity, "\(path): \(what) (\(reason))")
    }
    guard fchmod(descriptor, mode_t(mode)) == 0 else { throw fail("cannot set mode \(String(mode, radix: 8))") }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
      let n = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw fail("cannot write \(temporary)") }
      written += n
    }
    guard fsync(descriptor) == 0 else { throw fail("cannot sync \(temporary)") }
    close(descriptor)
    guard rename(temporary, path) == 0 else {
      let reason = String(cString: strerror(errno))
      unlink(temporary)
      throw AgentError(.identity, "\(path): cannot rename \(temporary) over it (\(reason))")
    }
  }

  /// Creates `path` (and missing parents) and makes the directory itself 0700: private keys go in it. An
  /// existing directory of this user is narrowed to 0700 too; one of another user is left as it is.
  static func createPrivateDirectory(_ path: String) throws(AgentError) {
    do {
      try FileManager.default.createDirectory(
        atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    } catch {
      throw AgentError(.identity, "\(path): cannot create the directory", cause: error)
    }
    var info = stat()
    guard stat(path, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o7777 != 0o700 else { return }
    guard chmod(path, 0o700) == 0 else {
      throw AgentError(.identity, "\(path): cannot make the directory 0700 (\(String(cString: strerror(errno))))")
    }
  }
}
