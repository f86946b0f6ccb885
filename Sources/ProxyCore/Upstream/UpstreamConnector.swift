package import NIOCore
#if canImport(Glibc)
  internal import Glibc
#endif
package import NIOPosix

/// Opens upstream connections on the caller's event loop (so a proxied connection's two sides share one
/// thread), with the cluster's connect timeout, buffer limit and `upstream_bind_config` source address.
package enum UpstreamConnector {
  package static func connect(
    to host: UpstreamHost, cluster: UpstreamCluster, on eventLoop: any EventLoop
  ) -> EventLoopFuture<any Channel> {
    let config = cluster.config
    let limit = max(32 * 1024, config.perConnectionBufferLimitBytes)
    var bootstrap = ClientBootstrap(group: eventLoop)
      .connectTimeout(config.connectTimeout)
      .channelOption(.allowRemoteHalfClosure, value: true)
      .channelOption(.writeBufferWaterMark, value: .init(low: limit / 2, high: limit))
    switch host.address {
    case .socket(let address):
      guard let source = sourceAddress(for: address, in: config.sourceAddresses) else {
        return bootstrap.connect(to: address)
      }
      // A source address that is not configured in this namespace (say ::6 without TPROXY's routing)
      // cannot be bound: count it and connect from the default source rather than fail every connection.
      let unbound = bootstrap
      return bootstrap.bind(to: source).connect(to: address).flatMapError { error in
        guard let io = error as? IOError, io.errnoCode == EADDRNOTAVAIL else {
          return eventLoop.makeFailedFuture(error)
        }
        cluster.stats.bindErrors.inc()
        return unbound.connect(to: address)
      }
    case .pipe(let path):
      return bootstrap.connect(unixDomainSocketPath: path)
    case .dns(let name, _):
      return eventLoop.makeFailedFuture(UnresolvedHostError(name: name))
    }
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
