package import NIOCore

/// Where an upstream host lives: an IP socket address, a DNS name still to resolve, or a Unix socket
/// (Envoy's `pipe`). The data path only ever sees `.socket` and `.pipe`; DNS clusters turn `.dns` into
/// `.socket` hosts.
package enum UpstreamAddress: Sendable, Hashable, CustomStringConvertible {
  case socket(SocketAddress)
  case dns(host: String, port: Int)
  case pipe(path: String)

  /// Envoy's spelling: `10.0.0.1:80`, `[::1]:80`, `unix://path` is written as the bare path.
  package var description: String {
    switch self {
    case .socket(let address): address.envoyDescription
    case .dns(let host, let port): "\(host):\(port)"
    case .pipe(let path): path
    }
  }
}

extension SocketAddress {
  /// `1.2.3.4:80` or `[::1]:80`, as Envoy prints addresses in stats, /clusters and /listeners.
  package var envoyDescription: String {
    switch self {
    case .v4:
      return "\(ipAddress ?? "?"):\(port ?? 0)"
    case .v6:
      return "[\(ipAddress ?? "?")]:\(port ?? 0)"
    case .unixDomainSocket:
      return pathname ?? "unix"
    }
  }

  /// The listener stat-name form Envoy uses: `0.0.0.0_15001`, `[__]_15001` style for v6 (`:` → `_`).
  package var statName: String {
    switch self {
    case .v4: return "\(ipAddress ?? "?")_\(port ?? 0)"
    case .v6: return "[\(ipAddress ?? "?")]_\(port ?? 0)".replacingColons()
    case .unixDomainSocket: return (pathname ?? "unix").replacingColons()
    }
  }

  /// True for 0.0.0.0 and ::.
  package var isAnyAddress: Bool {
    switch self {
    case .v4(let a): return a.address.sin_addr.s_addr == 0
    case .v6(let a):
      return withUnsafeBytes(of: a.address.sin6_addr) { $0.allSatisfy { $0 == 0 } }
    case .unixDomainSocket: return false
    }
  }

  /// The raw address bytes (4 or 16), for prefix matching.
  package var addressBytes: [UInt8]? {
    switch self {
    case .v4(let a): return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
    case .v6(let a):
      let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
      // An IPv4-mapped IPv6 address matches IPv4 ranges, as in Envoy.
      if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
        return Array(bytes[12...])
      }
      return bytes
    case .unixDomainSocket: return nil
    }
  }
}

extension String {
  fileprivate func replacingColons() -> String {
    String(map { $0 == ":" ? "_" : $0 })
  }
}
