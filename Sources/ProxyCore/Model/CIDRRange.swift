package import NIOCore

/// An address prefix (`10.0.0.0/8`, `::1/128`), Envoy's `CidrRange`. IPv4 ranges also match IPv4-mapped
/// IPv6 addresses.
package struct CIDRRange: Sendable, Hashable, CustomStringConvertible {
  package var bytes: [UInt8]
  package var prefixLength: Int

  /// Parses `address_prefix` + `prefix_len`; the address must be a literal IP address.
  package init(addressPrefix: String, prefixLength: Int?) throws(ProxyConfigError) {
    guard let address = try? SocketAddress(ipAddress: addressPrefix, port: 0),
      let bytes = address.addressBytes
    else {
      throw ProxyConfigError("address_prefix", "\"\(addressPrefix)\" is not an IP address")
    }
    let isV4 = bytes.count == 4
    let maximum = isV4 ? 32 : 128
    let length = prefixLength ?? maximum
    guard (0...maximum).contains(length) else {
      throw ProxyConfigError("prefix_len", "\(length) is out of range for \(addressPrefix) (0–\(maximum))")
    }
    self.bytes = bytes
    self.prefixLength = length
  }

  package func contains(_ address: SocketAddress) -> Bool {
    guard let candidate = address.addressBytes, candidate.count == bytes.count else { return false }
    var remaining = prefixLength
    var i = 0
    while remaining > 0 {
      let bits = min(8, remaining)
      let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
      if candidate[i] & mask != bytes[i] & mask { return false }
      remaining -= bits
      i += 1
    }
    return true
  }

  package var description: String {
    let text =
      bytes.count == 4
      ? bytes.map(String.init).joined(separator: ".")
      : stride(from: 0, to: 16, by: 2).map {
        String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
      }
      .joined(separator: ":")
    return "\(text)/\(prefixLength)"
  }
}
