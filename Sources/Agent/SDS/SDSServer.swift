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
    guard
      let descriptor = try UnixSocketListener.listen(
        at: socketPath, owner: owner, respectLiveServer: true, role: "SDS", logger: logger)
    else {
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
}
