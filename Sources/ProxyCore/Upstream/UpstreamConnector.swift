package import NIOCore
package import NIOPosix

#if canImport(Glibc)
  internal import Glibc
#endif

/// Opens upstream connections on the caller's event loop (so a proxied connection's two sides share one
/// thread), with the cluster's connect timeout, buffer limit and `upstream_bind_config` source address.
package enum UpstreamConnector {
  package static func connect(
    to host: UpstreamHost, cluster: UpstreamCluster, on eventLoop: any EventLoop
  ) -> EventLoopFuture<any Channel> {
    let config = cluster.config
    // One configured bootstrap per (event loop, source address), reused for every connection, and one that
    // adopts the sockets `connectLocally` connected.
    func bootstrap(source: SocketAddress? = nil, adopting: Bool = false) -> ClientBootstrap {
      let key = UpstreamCluster.BootstrapKey(
        eventLoop: ObjectIdentifier(eventLoop), source: source, adopting: adopting)
      return cluster.bootstraps.withLock { cache in
        if let bootstrap = cache[key] { return bootstrap }
        let limit = max(32 * 1024, config.perConnectionBufferLimitBytes)
        // Options set synchronously in the initializer: `channelOption` would apply each one through a
        // chain of futures per connection.
        var bootstrap = ClientBootstrap(group: eventLoop)
          .connectTimeout(config.connectTimeout)
          .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
              try UpstreamConnector.configure(channel, bufferLimit: limit)
            }
          }
        if let source { bootstrap = bootstrap.bind(to: source) }
        // An adopted socket already has TCP_NODELAY. The MPTCP flag only drops NIO's default TCP_NODELAY
        // option (a getsockname and a setsockopt per connection): an adopted socket keeps its protocol.
        if adopting { bootstrap = bootstrap.enableMPTCP(true) }
        cache[key] = bootstrap
        return bootstrap
      }
    }
    switch host.address {
    case .socket(let address):
      let source = sourceAddress(for: address, in: config.sourceAddresses)
      if isLoopback(address) || source.map(isLoopback) == true {
        do {
          if let socket = try connectLocally(to: address, from: source) {
            return bootstrap(adopting: true).withConnectedSocket(socket)
          }
        } catch {
          countBindError(error, in: cluster)
          return eventLoop.makeFailedFuture(error)
        }
      }
      guard let source else {
        return bootstrap().connect(to: address)
      }
      // A source address not configured in this namespace (::6 is only on lo with TPROXY routing) cannot be
      // bound. Like Envoy, fail and count it: connecting from another source would loop back through the
      // inbound capture, which only exempts 127.0.0.6 and ::6.
      return bootstrap(source: source).connect(to: address).flatMapErrorThrowing { error in
        countBindError(error, in: cluster)
        throw error
      }
    case .pipe(let path):
      return bootstrap().connect(unixDomainSocketPath: path)
    case .dns(let name, _):
      return eventLoop.makeFailedFuture(UnresolvedHostError(name: name))
    }
  }

  /// `bind_errors`: the source address is not configured on this host.
  private static func countBindError(_ error: any Error, in cluster: UpstreamCluster) {
    if let io = error as? IOError, io.errnoCode == EADDRNOTAVAIL { cluster.stats.bindErrors.inc() }
  }

  /// Connects to a destination on this host (loopback, or any address reached from a loopback source such as
  /// 127.0.0.6) without NIO's connect machinery. Such a handshake completes inside `connect(2)`, so the socket
  /// is adopted already connected: no connect timer, no wait for writability and two `epoll_ctl` calls fewer
  /// per connection. Returns nil when the handshake is still in flight (a full accept queue drops the SYN);
  /// the caller then connects the usual way. Throws `IOError` for a refused connection or a failed bind.
  static func connectLocally(to address: SocketAddress, from source: SocketAddress?) throws -> CInt? {
    let fd = Glibc.socket(
      address.protocol.rawValue,
      CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue)
        | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
    var connected = false
    defer { if !connected { _ = Glibc.close(fd) } }
    var on: CInt = 1
    guard setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
      throw IOError(errnoCode: errno, reason: "setsockopt(TCP_NODELAY)")
    }
    if let source {
      let failure = source.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) == 0 ? 0 : errno }
      guard failure == 0 else { throw IOError(errnoCode: failure, reason: "bind(\(source))") }
    }
    // A second connect(2) reports the outcome: 0 once established, EALREADY while in flight, else the error.
    for _ in 0..<2 {
      switch address.withSockAddr({ Glibc.connect(fd, $0, socklen_t($1)) == 0 ? 0 : errno }) {
      case 0, EISCONN:
        connected = true
        return fd
      case EINPROGRESS, EINTR: continue
      case EALREADY: return nil
      case let code: throw IOError(errnoCode: code, reason: "connect(\(address))")
      }
    }
    return nil
  }

  static func isLoopback(_ address: SocketAddress) -> Bool {
    switch address {
    case .v4(let v4): return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
    case .v6(let v6):
      var loopback = in6addr_loopback
      var actual = v6.address.sin6_addr
      return memcmp(&loopback, &actual, MemoryLayout<in6_addr>.size) == 0
    default: return false
    }
  }

  /// Half-close allowed, write buffer bounded by the buffer limit: for both sides of a proxied connection.
  package static func configure(_ channel: any Channel, bufferLimit limit: Int) throws {
    guard let options = channel.syncOptions else { return }
    try options.setOption(.allowRemoteHalfClosure, value: true)
    try options.setOption(.writeBufferWaterMark, value: .init(low: limit / 2, high: limit))
  }

  /// The first configured source address of the destination's family, port 0.
  static func sourceAddress(for destination: SocketAddress, in sources: [SocketAddress]) -> SocketAddress? {
    for source in sources {
      switch (source, destination) {
      case (.v4, .v4), (.v6, .v6): return source
      default: continue
      }
    }
    return nil
  }

  struct UnresolvedHostError: Error, CustomStringConvertible {
    var name: String
    var description: String { "host \(name) is not resolved" }
  }
}
