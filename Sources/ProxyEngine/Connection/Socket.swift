package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// The socket system calls of the data path, with errors as values. All sockets are non-blocking and
/// close-on-exec from creation.
package enum Socket {
  /// A non-blocking stream socket for `address`'s family.
  package static func stream(for address: SocketAddress) throws(SystemCallError) -> Int32 {
    let family: Int32 =
      switch address {
      case .v4: AF_INET
      case .v6: AF_INET6
      case .unixDomainSocket: AF_UNIX
      }
    let fd = socket(
      family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SystemCallError("socket", errno: currentErrno()) }
    return fd
  }

  package static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32, context: String)
    throws(SystemCallError)
  {
    var value = value
    guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
      throw SystemCallError("setsockopt", errno: currentErrno(), context: context)
    }
  }

  package static func bind(_ fd: Int32, to address: SocketAddress) throws(SystemCallError) {
    let result = address.withSockAddr { pointer, length in Glibc.bind(fd, pointer, socklen_t(length)) }
    guard result == 0 else { throw SystemCallError("bind", errno: currentErrno(), context: "\(address)") }
  }

  package static func listen(_ fd: Int32, backlog: Int32) throws(SystemCallError) {
    guard Glibc.listen(fd, backlog) == 0 else { throw SystemCallError("listen", errno: currentErrno()) }
  }

  /// Starts a non-blocking connect: `true` when connected at once (Unix sockets, loopback sometimes),
  /// `false` when in progress (wait for writability, then `pendingError`).
  ///
  /// On this host (a loopback destination or source) the handshake completes inside the first call unless
  /// the listener's accept queue is full, so a second call reports the outcome at once (0 or EISCONN):
  /// no wait for writability, no SO_ERROR read, one epoll_ctl fewer.
  package static func connect(_ fd: Int32, to address: SocketAddress, local: Bool = false)
    throws(SystemCallError) -> Bool
  {
    for attempt in 0..<(local ? 2 : 1) {
      let result = address.withSockAddr { pointer, length in Glibc.connect(fd, pointer, socklen_t(length)) }
      if result == 0 { return true }
      let code = currentErrno()
      switch code {
      case EISCONN where attempt > 0: return true
      case EINPROGRESS, EAGAIN, EINTR: continue
      case EALREADY: return false
      default: throw SystemCallError("connect", errno: code, context: "to \(address)")
      }
    }
    return false
  }

  /// 127.0.0.0/8 or ::1.
  package static func isLoopback(_ address: SocketAddress) -> Bool {
    switch address {
    case .v4(let v4): return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
    case .v6(let v6):
      return withUnsafeBytes(of: v6.address.sin6_addr) { bytes in
        bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1
      }
    case .unixDomainSocket: return false
    }
  }

  /// SO_ERROR: the outcome of a non-blocking connect (0 when connected).
  package static func pendingError(_ fd: Int32) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return currentErrno() }
    return value
  }

  /// The socket's local address.
  package static func localAddress(_ fd: Int32) -> SocketAddress? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard result == 0 else { return nil }
    return address(from: storage)
  }

  /// The socket's peer address.
  package static func peerAddress(_ fd: Int32) -> SocketAddress? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
    }
    guard result == 0 else { return nil }
    return address(from: storage)
  }

  /// SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST (option 80): where a NATed (REDIRECTed) connection was headed;
  /// nil when the connection was not redirected (the kernel reports the local address, or fails).
  package static func originalDestination(_ fd: Int32, local: SocketAddress) -> SocketAddress? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let level: Int32
    switch local {
    case .v4: level = Int32(IPPROTO_IP)
    case .v6: level = Int32(IPPROTO_IPV6)
    case .unixDomainSocket: return nil
    }
    guard getsockopt(fd, level, 80, &storage, &length) == 0, let found = address(from: storage) else {
      return nil
    }
    return found == local ? nil : found
  }

  /// Converts a kernel address; nil for families the proxy does not serve.
  static func address(from storage: sockaddr_storage) -> SocketAddress? {
    var storage = storage
    switch Int32(storage.ss_family) {
    // An empty host: NIO would otherwise format the address into a String per connection (the IP text is
    // computed when something asks for it).
    case AF_INET:
      return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self), host: "") }
    case AF_INET6:
      return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self), host: "") }
    case AF_UNIX:
      return withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_un.self)) }
    default:
      return nil
    }
  }
}
