package import NIOCore
internal import NIOPosix

#if canImport(Glibc)
  internal import Glibc
#endif

/// Name resolution for STRICT_DNS and LOGICAL_DNS clusters: the system resolver (`getaddrinfo`, so
/// /etc/hosts and resolv.conf apply) on NIO's blocking-I/O thread pool, never on an event loop.
package struct DNSResolver: Sendable {
  package struct Failure: Error, CustomStringConvertible {
    package var host: String
    package var reason: String
    package var description: String { "cannot resolve \(host): \(reason)" }
  }

  package init() {}

  /// Addresses for `host`, in resolver order, filtered and ordered by the cluster's lookup family.
  package func resolve(
    host: String, port: Int, family: Cluster.DNSLookupFamily
  ) async throws -> [SocketAddress] {
    let addresses = try await NIOThreadPool.singleton.runIfActive {
      try Self.getaddrinfo(host: host, port: port)
    }
    let v4 = addresses.filter { if case .v4 = $0 { true } else { false } }
    let v6 = addresses.filter { if case .v6 = $0 { true } else { false } }
    switch family {
    case .v4Only: return v4
    case .v6Only: return v6
    case .v4Preferred: return v4.isEmpty ? v6 : v4
    case .auto: return v6.isEmpty ? v4 : v6  // Envoy's AUTO prefers IPv6
    case .all: return addresses
    }
  }

  private static func getaddrinfo(host: String, port: Int) throws -> [SocketAddress] {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_protocol = Int32(IPPROTO_TCP)
    var result: UnsafeMutablePointer<addrinfo>?
    let rc = Glibc.getaddrinfo(host, String(port), &hints, &result)
    guard rc == 0, let first = result else {
      throw Failure(host: host, reason: String(cString: gai_strerror(rc)))
    }
    defer { freeaddrinfo(first) }
    var addresses: [SocketAddress] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let info = cursor {
      if let sockaddr = info.pointee.ai_addr {
        switch info.pointee.ai_family {
        case AF_INET:
          let address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
            SocketAddress($0.pointee, host: host)
          }
          if !addresses.contains(address) { addresses.append(address) }
        case AF_INET6:
          let address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
            SocketAddress($0.pointee, host: host)
          }
          if !addresses.contains(address) { addresses.append(address) }
        default:
          break
        }
      }
      cursor = info.pointee.ai_next
    }
    return addresses
  }
}
