internal import Glibc

/// An IPv4 or IPv6 socket address as the validator's client and listeners exchange it.
///
/// `text` is canonical (inet_ntop), `ip:port` or `[ip]:port`, so two addresses compare equal as text
/// exactly when they are equal.
enum CaptureSocketAddress: Sendable {
  case v4(sockaddr_in)
  case v6(sockaddr_in6)

  /// Parses an IP literal of `family`; nil if `literal` is not one.
  init?(literal: String, port: UInt16, family: IPFamily) {
    switch family {
    case .v4:
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      guard inet_pton(AF_INET, literal, &address.sin_addr) == 1 else { return nil }
      self = .v4(address)
    case .v6:
      var address = sockaddr_in6()
      address.sin6_family = sa_family_t(AF_INET6)
      address.sin6_port = port.bigEndian
      guard inet_pton(AF_INET6, literal, &address.sin6_addr) == 1 else { return nil }
      self = .v6(address)
    }
  }

  var family: IPFamily {
    switch self {
    case .v4: .v4
    case .v6: .v6
    }
  }

  var port: UInt16 {
    switch self {
    case .v4(let address): UInt16(bigEndian: address.sin_port)
    case .v6(let address): UInt16(bigEndian: address.sin6_port)
    }
  }

  /// The address without the port, as inet_ntop prints it.
  var ip: String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let printed: UnsafePointer<CChar>?
    switch self {
    case .v4(var address):
      printed = inet_ntop(AF_INET, &address.sin_addr, &buffer, socklen_t(buffer.count))
    case .v6(var address):
      printed = inet_ntop(AF_INET6, &address.sin6_addr, &buffer, socklen_t(buffer.count))
    }
    guard printed != nil else { return "?" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// `ip:port`, or `[ip]:port` for IPv6.
  var text: String {
    switch self {
    case .v4: "\(ip):\(port)"
    case .v6: "[\(ip)]:\(port)"
    }
  }

  /// Calls `body` with the address as a `sockaddr` pointer and its length, for bind(2) and connect(2).
  func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    switch self {
    case .v4(var address):
      withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    case .v6(var address):
      withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    }
  }
}
