internal import Glibc

/// An IP network in canonical form: host bits are cleared, so `10.1.2.3/8` is stored as `10.0.0.0/8`.
///
/// Parsing is strict (inet_pton plus a prefix within the family's width); the rendered text is what
/// both iptables-save and nft print back, which keeps diffs stable.
package struct CIDR: Sendable, Hashable, CustomStringConvertible {
  package let family: IPFamily
  /// Network address bytes: 4 for IPv4, 16 for IPv6.
  package let address: [UInt8]
  package let prefixLength: Int

  package static let ipv4Loopback = CIDR(family: .v4, address: [127, 0, 0, 1], prefixLength: 32)
  package static let ipv6Loopback = CIDR(
    family: .v6, address: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128)
  /// The source address Envoy uses for inbound passthrough and the agent for its probes.
  package static let ipv4Passthrough = CIDR(family: .v4, address: [127, 0, 0, 6], prefixLength: 32)
  package static let ipv6Passthrough = CIDR(
    family: .v6, address: [UInt8](repeating: 0, count: 15) + [6], prefixLength: 128)

  package init(family: IPFamily, address: [UInt8], prefixLength: Int) {
    self.family = family
    self.prefixLength = prefixLength
    var bytes = address
    for i in 0..<bytes.count {
      let bitsInByte = max(0, min(8, prefixLength - i * 8))
      let mask: UInt8 = bitsInByte == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsInByte))
      bytes[i] &= mask
    }
    self.address = bytes
  }

  /// Parses `a.b.c.d[/n]` or `x:y::z[/n]`; a bare address is a host route (/32 or /128).
  package init?(_ text: String) {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let addressPart = parts.first, !addressPart.isEmpty else { return nil }
    guard let (family, bytes) = CIDR.parseAddress(String(addressPart)) else { return nil }
    let width = family == .v4 ? 32 : 128
    var prefix = width
    if parts.count == 2 {
      guard let p = Int(parts[1]), parts[1].allSatisfy(\.isASCII), (0...width).contains(p) else { return nil }
      prefix = p
    }
    self.init(family: family, address: bytes, prefixLength: prefix)
  }

  /// Parses a single IP literal into its family and bytes.
  package static func parseAddress(_ text: String) -> (IPFamily, [UInt8])? {
    var v4 = in_addr()
    if text.contains(".") && !text.contains(":"), inet_pton(AF_INET, text, &v4) == 1 {
      return (.v4, withUnsafeBytes(of: &v4) { Array($0) })
    }
    var v6 = in6_addr()
    if text.contains(":"), inet_pton(AF_INET6, text, &v6) == 1 {
      return (.v6, withUnsafeBytes(of: &v6) { Array($0) })
    }
    return nil
  }

  package var addressText: String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    var bytes = address
    let family = self.family == .v4 ? AF_INET : AF_INET6
    _ = bytes.withUnsafeMutableBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  package var isLoopback: Bool {
    family == .v4 ? address[0] == 127 : (address == CIDR.ipv6Loopback.address && prefixLength == 128)
  }

  /// Whether `other` lies entirely inside this network.
  package func contains(_ other: CIDR) -> Bool {
    guard other.family == family, other.prefixLength >= prefixLength else { return false }
    return CIDR(family: family, address: other.address, prefixLength: prefixLength) == self
  }

  package var description: String { "\(addressText)/\(prefixLength)" }
}
