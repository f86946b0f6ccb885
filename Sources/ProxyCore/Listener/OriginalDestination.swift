package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// Reads a redirected connection's original destination: SO_ORIGINAL_DST (IPv4, SOL_IP) or
/// IP6T_SO_ORIGINAL_DST (IPv6, SOL_IPV6), both option 80. Nil when the connection was not NATed (the
/// kernel then reports the local address itself, or fails); TPROXY connections keep their original
/// destination as the local address, so callers fall back to it for transparent listeners.
package enum OriginalDestination {
  private static let optionName: SocketOptionName = 80

  package static func read(from channel: any Channel) -> EventLoopFuture<SocketAddress?> {
    guard let provider = channel as? any SocketOptionProvider, let local = channel.localAddress else {
      return channel.eventLoop.makeSucceededFuture(nil)
    }
    let result: EventLoopFuture<SocketAddress>
    switch local {
    case .v6:
      result = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: optionName)
        .map { (raw: sockaddr_in6) in SocketAddress(raw, host: "") }
    case .v4:
      result = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IP), name: optionName)
        .map { (raw: sockaddr_in) in SocketAddress(raw, host: "") }
    case .unixDomainSocket:
      return channel.eventLoop.makeSucceededFuture(nil)
    }
    return result.map { address -> SocketAddress? in
      address == local ? nil : address
    }.recover { _ in nil }
  }
}
