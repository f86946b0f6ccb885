internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
package import Logging
internal import ServiceLifecycle

#if canImport(Glibc)
  internal import Glibc
#endif

/// The SDS server on the workload socket (`./var/run/secrets/workload-spiffe-uds/socket`).
///
/// Start-up follows Istio's agent: if a healthy SDS server (SPIRE, say) already answers on the path, the
/// agent leaves it alone and serves nothing; a stale socket file (nobody listening) is replaced. The socket
/// is created owner-only — owned by the proxy's user when the agent runs as root and drops the proxy to
/// 1337 — so no other local user can read the workload's key through it.
package struct SDSServer: Service {
  package var socketPath: String
  package var owner: (uid: UInt32, gid: UInt32)?
  private let cache: SecretCache
  private let logger: Logger
  private let onListening: @Sendable (String) -> Void

  package init(
    socketPath: String, owner: (uid: UInt32, gid: UInt32)?, cache: SecretCache, logger: Logger,
    onListening: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.socketPath = socketPath
    self.owner = owner
    self.cache = cache
    self.logger = logger
    self.onListening = onListening
  }

  package func run() async throws {
    guard let descriptor = try Self.listen(at: socketPath, owner: owner, logger: logger) else {
      logger.notice(
        "an SDS server is already serving the workload socket; not starting the agent's",
        metadata: ["agent.sds.socket": "\(socketPath)"])
      try? await gracefulShutdown()
      return
    }
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.http2.maxConcurrentStreams = 100_000
    let server = GRPCServer(
      transport: .http2NIOPosix(
        listeningSocketDescriptor: Int(descriptor), transportSecurity: .plaintext, config: config),
      services: [SecretDiscoveryService(cache: cache, logger: logger)])
    logger.info("SDS server listening", metadata: ["agent.sds.socket": "\(socketPath)"])
    onListening(socketPath)
    defer { unlink(socketPath) }
    try await withGracefulShutdownHandler {
      try await server.serve()
    } onGracefulShutdown: {
      server.beginGracefulShutdown()
    }
  }

  /// A listening socket at `path`, or nil when a live server already owns it.
  static func listen(
    at path: String, owner: (uid: UInt32, gid: UInt32)?, logger: Logger
  ) throws(AgentError) -> Int32? {
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty {
      do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      } catch {
        throw AgentError(.identity, "\(directory): cannot create the SDS socket directory", cause: error)
      }
    }
    var address = try socketAddress(path)
    if FileManager.default.fileExists(atPath: path) {
      if isServing(&address) { return nil }
      logger.info("removing a stale SDS socket", metadata: ["agent.sds.socket": "\(path)"])
      guard unlink(path) == 0 || errno == ENOENT else {
        throw AgentError(.identity, "\(path): cannot remove the stale SDS socket (\(String(cString: strerror(errno))))")
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
      throw AgentError(.identity, "\(path): cannot bind the SDS socket (\(reason))")
    }
    _ = chmod(path, 0o600)
    if let owner, chown(path, owner.uid, owner.gid) != 0 {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      unlink(path)
      throw AgentError(.identity, "\(path): cannot give the SDS socket to uid \(owner.uid) (\(reason))")
    }
    guard Glibc.listen(descriptor, 128) == 0 else {
      let reason = String(cString: strerror(errno))
      close(descriptor)
      unlink(path)
      throw AgentError(.identity, "\(path): cannot listen on the SDS socket (\(reason))")
    }
    return descriptor
  }

  private static func socketAddress(_ path: String) throws(AgentError) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
      throw AgentError(.identity, "\(path): the SDS socket path is longer than \(capacity - 1) bytes")
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
