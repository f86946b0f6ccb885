internal import Foundation
internal import Glibc

/// What `pilotfish istio-iptables` reads from the namespace it runs in, behind one value so tests can
/// substitute it.
package struct HostFacts: Sendable {
  /// Whether the kernel has IPv6 enabled in this namespace.
  package var kernelIPv6: Bool
  /// Non-loopback, non-link-local addresses of this namespace's interfaces.
  package var addresses: [CIDR]
  /// `nameserver` entries of resolv.conf.
  package var nameservers: [CIDR]
  /// Whether the process holds CAP_NET_ADMIN.
  package var hasNetAdmin: Bool
  /// Default gateways (IPv4 from /proc/net/route, IPv6 from /proc/net/ipv6_route).
  package var defaultGateways: [CIDR]

  package init(
    kernelIPv6: Bool, addresses: [CIDR], nameservers: [CIDR], hasNetAdmin: Bool, defaultGateways: [CIDR] = []
  ) {
    self.kernelIPv6 = kernelIPv6
    self.addresses = addresses
    self.nameservers = nameservers
    self.hasNetAdmin = hasNetAdmin
    self.defaultGateways = defaultGateways
  }

  /// Reads the facts of the current network namespace.
  package static func current(resolvConf: String = "/etc/resolv.conf") -> HostFacts {
    HostFacts(
      kernelIPv6: kernelHasIPv6(), addresses: interfaceAddresses(),
      nameservers: nameservers(in: (try? String(contentsOfFile: resolvConf, encoding: .utf8)) ?? ""),
      hasNetAdmin: hasCapability(12), defaultGateways: defaultGateways())
  }

  static func defaultGateways() -> [CIDR] {
    var result: [CIDR] = []
    let v4 = (try? String(contentsOfFile: "/proc/thread-self/net/route", encoding: .utf8)) ?? ""
    for line in v4.split(separator: "\n").dropFirst() {
      let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard f.count > 2, f[1] == "00000000", let gw = UInt32(f[2], radix: 16), gw != 0 else { continue }
      // The kernel prints the address in host byte order of a little-endian machine.
      let bytes = withUnsafeBytes(of: gw.littleEndian) { Array($0) }
      result.append(CIDR(family: .v4, address: bytes, prefixLength: 32))
      break
    }
    let v6 = (try? String(contentsOfFile: "/proc/thread-self/net/ipv6_route", encoding: .utf8)) ?? ""
    for line in v6.split(separator: "\n") {
      let f = line.split(separator: " ")
      guard f.count > 4, f[0] == String(repeating: "0", count: 32), f[1] == "00",
        f[4] != Substring(String(repeating: "0", count: 32))
      else { continue }
      var bytes: [UInt8] = []
      var index = f[4].startIndex
      while index < f[4].endIndex {
        let next = f[4].index(index, offsetBy: 2)
        bytes.append(UInt8(f[4][index..<next], radix: 16) ?? 0)
        index = next
      }
      result.append(CIDR(family: .v6, address: bytes, prefixLength: 128))
      break
    }
    return result
  }

  static func kernelHasIPv6() -> Bool {
    guard FileManager.default.fileExists(atPath: "/proc/thread-self/net/if_inet6"),
      let disabled = try? String(contentsOfFile: "/proc/sys/net/ipv6/conf/all/disable_ipv6", encoding: .utf8)
    else { return false }
    return disabled.trimmingCharacters(in: .whitespacesAndNewlines) == "0"
  }

  package static func nameservers(in resolvConf: String) -> [CIDR] {
    resolvConf.split(separator: "\n").compactMap { line in
      let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard words.count >= 2, words[0] == "nameserver" else { return nil }
      // Scoped IPv6 servers (fe80::1%eth0) cannot be matched by address; they are skipped like Istio does.
      return CIDR(String(words[1]))
    }
  }

  static func interfaceAddresses() -> [CIDR] {
    var result: [CIDR] = []
    var head: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&head) == 0 else { return [] }
    defer { freeifaddrs(head) }
    var cursor = head
    while let entry = cursor {
      defer { cursor = entry.pointee.ifa_next }
      guard let sa = entry.pointee.ifa_addr else { continue }
      if Int32(sa.pointee.sa_family) == AF_INET {
        let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
          withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) }
        }
        if bytes[0] != 127 && !(bytes[0] == 169 && bytes[1] == 254) {
          result.append(CIDR(family: .v4, address: bytes, prefixLength: 32))
        }
      } else if Int32(sa.pointee.sa_family) == AF_INET6 {
        let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
          withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }
        }
        let linkLocal = bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80
        // ::1, and ::6 which TPROXY mode adds to lo as the passthrough source, are not the pod's addresses.
        let loopback = bytes == CIDR.ipv6Loopback.address || bytes == CIDR.ipv6Passthrough.address
        if !linkLocal && !loopback { result.append(CIDR(family: .v6, address: bytes, prefixLength: 128)) }
      }
    }
    return result
  }

  /// Whether capability `bit` is in the effective set (from /proc/self/status `CapEff`).
  static func hasCapability(_ bit: Int) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
      let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return getuid() == 0 }
    return mask & (1 << UInt64(bit)) != 0
  }
}
