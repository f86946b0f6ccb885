internal import CReactor
package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// Told about each accepted socket; it owns the fd from then on.
package protocol ListenSocketCallbacks: AnyObject {
  /// `peer` is the address accept(2) reported (nil for families the proxy does not serve).
  func onAccept(_ listener: ListenSocket, fd: Int32, peer: SocketAddress?)
  /// accept(2) failed for lack of file descriptors or memory; the listener pauses (`pauseMilliseconds`).
  func onAcceptExhausted(_ listener: ListenSocket, errno: Int32)
}

/// How a listening socket is opened.
package struct ListenSocketOptions: Sendable {
  package var backlog: Int32 = 1024
  /// SO_REUSEPORT: each worker binds its own socket and the kernel spreads connections (Envoy's default
  /// for TCP listeners since 1.20). Off: one socket shared by every worker's epoll (EPOLLEXCLUSIVE).
  package var reusePort = true
  /// IP_TRANSPARENT / IPV6_TRANSPARENT (TPROXY interception).
  package var transparent = false
  /// For IPv6 wildcard listeners: also accept IPv4 (IPV6_V6ONLY off).
  package var ipv4Compatible = false

  package init() {}
}

/// A listening socket on one reactor: accepts with `accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)` up to a batch per
/// readiness, and on EMFILE/ENFILE/ENOBUFS/ENOMEM stops watching the socket for a moment instead of
/// retrying at once (the connection stays in the backlog and would report readable forever).
package final class ListenSocket: ReactorHandle {
  /// Unowned without reference counting: the reactor outlives its listening sockets.
  package unowned(unsafe) let reactor: Reactor
  package let fd: Int32
  /// Whether this listener owns `fd` (closes it); false for a shared socket another listener owns.
  private let ownsSocket: Bool
  package private(set) var token = SlotToken(raw: 0)
  package let callbacks: any ListenSocketCallbacks
  package private(set) var isClosed = false
  private var pauseTimer = TimerID.none
  private var paused = false
  /// Connections accepted per readiness report at most (fairness with the connections already open).
  package var acceptBatch = 64
  package var pauseMilliseconds: Int64 = 100

  private static let pauseKind: UInt32 = 1

  /// Opens, binds and listens on `address`.
  package static func open(_ address: SocketAddress, options: ListenSocketOptions) throws(SystemCallError)
    -> Int32
  {
    let fd = try Socket.stream(for: address)
    do {
      try Socket.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, context: "SO_REUSEADDR")
      if options.reusePort {
        try Socket.setOption(fd, level: SOL_SOCKET, name: SO_REUSEPORT, value: 1, context: "SO_REUSEPORT")
      }
      switch address {
      case .v4:
        if options.transparent {
          try Socket.setOption(fd, level: Int32(IPPROTO_IP), name: 19, value: 1, context: "IP_TRANSPARENT")
        }
        try Socket.setOption(
          fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, context: "TCP_NODELAY")
      case .v6:
        try Socket.setOption(
          fd, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: options.ipv4Compatible ? 0 : 1,
          context: "IPV6_V6ONLY")
        if options.transparent {
          try Socket.setOption(
            fd, level: Int32(IPPROTO_IPV6), name: 75, value: 1, context: "IPV6_TRANSPARENT")
        }
        try Socket.setOption(
          fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, context: "TCP_NODELAY")
      case .unixDomainSocket:
        break
      }
      try Socket.bind(fd, to: address)
      try Socket.listen(fd, backlog: options.backlog)
    } catch {
      Glibc.close(fd)
      throw error
    }
    return fd
  }

  /// Watches `fd` (from `open`) on `reactor`. With `ownsSocket` false the socket is shared with other
  /// reactors (no SO_REUSEPORT): it is registered with EPOLLEXCLUSIVE so one reactor wakes per connection.
  package init(fd: Int32, reactor: Reactor, ownsSocket: Bool = true, callbacks: any ListenSocketCallbacks)
    throws(SystemCallError)
  {
    self.fd = fd
    self.reactor = reactor
    self.ownsSocket = ownsSocket
    self.callbacks = callbacks
    let interest = ReactorEvents.readable | (ownsSocket ? 0 : ReactorEvents.exclusive)
    self.token = try reactor.register(self, fd: fd, interest: interest)
    self.pauseTimer = reactor.makeTimer(owner: token, kind: Self.pauseKind)
  }

  /// The bound address (read once).
  package private(set) lazy var localAddress: SocketAddress? = Socket.localAddress(fd)

  /// Stops accepting: the socket leaves epoll and, if owned, is closed (the kernel then resets what is
  /// still in its backlog).
  package func close() {
    guard !isClosed else { return }
    isClosed = true
    reactor.destroy(pauseTimer)
    if !paused { reactor.deregister(token, fd: fd) } else { reactor.forget(token) }
    if ownsSocket { Glibc.close(fd) }
  }

  package func handleIO(_ events: UInt32) {
    guard !isClosed, !paused else { return }
    for _ in 0..<acceptBatch {
      var peer = sockaddr_storage()
      var length = UInt32(MemoryLayout<sockaddr_storage>.size)
      let accepted = creactor_accept(fd, &peer, &length)
      if accepted >= 0 {
        callbacks.onAccept(self, fd: accepted, peer: Socket.address(from: peer))
        if isClosed { return }
        continue
      }
      let code = currentErrno()
      switch code {
      case EAGAIN, EWOULDBLOCK:
        return
      case EINTR, ECONNABORTED, EPROTO, EPERM:
        continue  // this connection is gone; the next may be fine
      case EMFILE, ENFILE, ENOBUFS, ENOMEM:
        paused = true
        reactor.park(token, fd: fd)
        reactor.arm(pauseTimer, afterMilliseconds: pauseMilliseconds)
        callbacks.onAcceptExhausted(self, errno: code)
        return
      default:
        return
      }
    }
  }

  package func reactorWillStop() { close() }

  package func handleTimer(kind: UInt32) {
    guard kind == Self.pauseKind, paused, !isClosed else { return }
    paused = false
    reactor.unpark(
      token, fd: fd, interest: ReactorEvents.readable | (ownsSocket ? 0 : ReactorEvents.exclusive))
  }
}
