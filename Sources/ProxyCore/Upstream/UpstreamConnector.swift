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
    // One configured bootstrap per (event loop, source address), reused for every connection.
    func bootstrap(source: SocketAddress? = nil) -> ClientBootstrap {
      let key = UpstreamCluster.BootstrapKey(eventLoop: ObjectIdentifier(eventLoop), source: source)
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
        cache[key] = bootstrap
        return bootstrap
      }
    }
    switch host.address {
    case .socket(let address):
      guard let source = sourceAddress(for: address, in: config.sourceAddresses) else {
        return bootstrap().connect(to: address)
      }
      // A source address not configured in this namespace (::6 is only on lo with TPROXY routing) cannot be
      // bound. Like Envoy, fail and count it: connecting from another source would loop back through the
      // inbound capture, which only exempts 127.0.0.6 and ::6.
      return bootstrap(source: source).connect(to: address).flatMapErrorThrowing { error in
        if let io = error as? IOError, io.errnoCode == EADDRNOTAVAIL { cluster.stats.bindErrors.inc() }
        throw error
      }
    case .pipe(let path):
      return bootstrap().connect(unixDomainSocketPath: path)
    case .dns(let name, _):
      return eventLoop.makeFailedFuture(UnresolvedHostError(name: name))
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
