package import NIOCore
package import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// A terminal network filter that serves its connections on the reactor, as the HTTP connection manager
/// does (tcp_proxy is the engine's own and needs no conformance). A listener whose every filter chain ends in
/// tcp_proxy or in one of these runs on the reactor.
package protocol ReactorTerminalFilter: Sendable {
  /// Takes over `connection` (accepted, not reading yet): becomes its callbacks and starts reading.
  /// `initialBytes` are bytes listener filters already read, handled first. `accounting.finish()` must run
  /// exactly once, when the connection is gone.
  func serve(
    _ connection: Connection, info: DownstreamConnection, proxy: ProxyContext, initialBytes: ByteBuffer?,
    accounting: ListenerConnectionAccounting)
}

/// Why an upstream connection could not be started.
package struct UpstreamConnectError: Error, CustomStringConvertible {
  package let errno: Int32
  package let reason: String
  /// What Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` says for this failure.
  package let transportFailureReason: String
  package var description: String { reason }

  init(errno: Int32, reason: String, transportFailureReason: String? = nil) {
    self.errno = errno
    self.reason = reason
    self.transportFailureReason = transportFailureReason ?? reason
  }

  /// Envoy's transport failure reason for a connect that failed later (`SO_ERROR`).
  package static func delayedFailureReason(_ code: Int32) -> String {
    "delayed connect error: \(String(cString: strerror(code)))"
  }
}

extension Connection {
  /// Starts a connection to `host` of `cluster` on `reactor`: its socket or Unix address, the cluster's
  /// source address for the family and its per-connection buffer limit. A failed bind counts in
  /// `bind_errors`. (DNS hosts are resolved by the cluster before they get here.)
  package static func upstream(
    to host: UpstreamHost, of cluster: UpstreamCluster, reactor: Reactor
  ) throws(UpstreamConnectError) -> Connection {
    let address: SocketAddress
    var source: SocketAddress?
    switch host.address {
    case .socket(let socketAddress):
      address = socketAddress
      source = cluster.config.sourceAddresses.first { candidate in
        switch (candidate, socketAddress) {
        case (.v4, .v4), (.v6, .v6): true
        default: false
        }
      }
    case .pipe(let path):
      guard let unix = try? SocketAddress(unixDomainSocketPath: path) else {
        throw UpstreamConnectError(errno: ENAMETOOLONG, reason: "unix socket path too long: \(path)")
      }
      address = unix
    case .dns(let name, _):
      throw UpstreamConnectError(errno: EHOSTUNREACH, reason: "host \(name) is not resolved")
    }
    let limit = max(32 * 1024, cluster.config.perConnectionBufferLimitBytes)
    do {
      return try Connection(connectingTo: address, reactor: reactor, bufferLimit: limit, bindTo: source)
    } catch {
      if error.errno == EADDRNOTAVAIL { cluster.stats.bindErrors.inc() }
      throw UpstreamConnectError(
        errno: error.errno, reason: error.description,
        transportFailureReason: "immediate connect error: \(String(cString: strerror(error.errno)))")
    }
  }
}
