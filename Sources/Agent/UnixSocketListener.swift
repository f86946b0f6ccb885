internal import Foundation
internal import Logging

#if canImport(Glibc)
  internal import Glibc
#endif

/// Listening Unix sockets for the agent's gRPC servers (SDS, the xDS proxy), created owner-only from the
/// first moment (on Linux a socket file takes the socket inode's mode at bind) and handed to the proxy's
/// user when the agent runs as root.
enum UnixSocketListener {
  /// A listening socket at `path`, owner-only (and given to `owner`), or nil when `respectLiveServer` and
  /// a live server already owns the path. A stale socket file is replaced.
  static func listen(
    at path: String, owner: (uid: UInt32, gid: UInt32)?, respectLiveServer: Bool, role: String, logger: Logger
  ) throws(AgentError) -> Int32? {
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      } catch {
        throw AgentError(.identity, "\(directory): cannot create the \(role) socket directory", cause: error)
      }
    }
    var address = try socketAddress(path)
    if FileManager.default.fileExists(atPath: path) {
      if respectLiveServer, isServing(&address) { return nil }
      logger.info("removing an existing \(role) socket", metadata: ["agent.socket": "\(path)"])
      guard unlink(path) == 0 || errno == ENOENT else {
        throw AgentError(.identity, "\(path): cannot remove the stale \(role) socket (\(String(cString: strerror(errno))))")
      }
    }
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else {
      throw AgentError(.identity, "\(path): socket(AF_UNIX) failed (\(String(cString: strerror(errno))))")
    }
    // On Linux the socket file takes the socket inode's mode at bind: owner-only from the first moment.
    _ = fchmod(descriptor, 0o600)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0 else {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      throw AgentError(.identity, "\(path): cannot bind the \(role) socket (\(reason))")
    }
    _ = chmod(path, 0o600)
    if let owner, chown(path, owner.uid, owner.gid) != 0 {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      unlink(path)
      throw AgentError(.identity, "\(path): cannot give the \(role) socket to uid \(owner.uid) (\(reason))")
    }
    guard Glibc.listen(descriptor, 128) == 0 else {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      unlink(path)
      throw AgentError(.identity, "\(path): cannot listen on the \(role) socket (\(reason))")
    }
    return descriptor
  }

  private static func socketAddress(_ path: String) throws(AgentError) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
      throw AgentError(.identity, "\(path): the socket path is longer than \(capacity - 1) bytes")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
      buffer.copyBytes(from: bytes)
      buffer[bytes.count] = 0
    }
    return address
  }

  /// Whether something accepts connections on the socket (Istio's health check of an existing socket).
  private static func isServing(_ address: inout sockaddr_un) -> Bool {
    let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard probe >= 0 else { return false }
    defer { close(probe) }
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    return result == 0
  }
}
