import NIOCore
import TestSupport
import Testing

@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

extension SocketSuites {
  /// Connecting upstream on this host: a loopback handshake completes inside connect(2), from the cluster's
  /// source address; what does not complete at once is left to the reactor's writability wait.
  @Suite("Upstream connects", .timeLimit(.minutes(1)))
  struct UpstreamConnectTests {
    @Test("a loopback destination is connected inside connect(2), from the configured loopback source")
    func connectsLocallyFromTheSource() throws {
      let reactor = try Reactor(name: "test")
      let server = try LoopbackServer(.banner("hello"))
      let destination = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
      let source = try SocketAddress(ipAddress: "127.0.0.6", port: 0)
      let connection = try Connection(connectingTo: destination, reactor: reactor, bindTo: source)
      defer { connection.close(.noFlush) }
      #expect(connection.state == .open)
      #expect(connection.remoteAddress == destination)
      #expect(connection.localAddress?.ipAddress == "127.0.0.6")
      var nodelay: CInt = 0
      var length = socklen_t(MemoryLayout<CInt>.size)
      #expect(
        getsockopt(connection.fd, CInt(IPPROTO_TCP), TCP_NODELAY, &nodelay, &length) == 0 && nodelay == 1)
      withExtendedLifetime(server) {}
    }

    @Test("IPv6 loopback (::1) is connected inside connect(2) too")
    func connectsIPv6Loopback() throws {
      let reactor = try Reactor(name: "test")
      let listener = try ListenSocket.open(try SocketAddress(ipAddress: "::1", port: 0), options: .init())
      defer { close(listener) }
      let destination = try #require(Socket.localAddress(listener))
      let connection = try Connection(connectingTo: destination, reactor: reactor)
      defer { connection.close(.noFlush) }
      #expect(connection.state == .open)
    }

    @Test("a refused loopback connect throws at once, naming the destination")
    func refusedThrows() throws {
      let reactor = try Reactor(name: "test")
      let closed = try LoopbackServer(.echo)
      let port = closed.port
      closed.close()
      let destination = try SocketAddress(ipAddress: "127.0.0.1", port: port)
      #expect {
        _ = try Connection(connectingTo: destination, reactor: reactor)
      } throws: { error in
        guard let error = error as? SystemCallError else { return false }
        return error.errno == ECONNREFUSED && "\(error)".contains("127.0.0.1:\(port)")
      }
      #expect(reactor.handleCount == 0)
    }

    @Test("a handshake still in flight (a full accept queue) waits for writability instead of failing")
    func inFlightWaits() throws {
      let reactor = try Reactor(name: "test")
      // A listener that never accepts, with the smallest backlog: once its queue is full, SYNs are dropped.
      var options = ListenSocketOptions()
      options.backlog = 0
      let listener = try ListenSocket.open(
        try SocketAddress(ipAddress: "127.0.0.1", port: 0), options: options)
      defer { close(listener) }
      let destination = try #require(Socket.localAddress(listener))
      var connections: [Connection] = []
      defer { for connection in connections { connection.close(.noFlush) } }
      var inFlight = false
      for _ in 0..<16 {
        let connection = try Connection(connectingTo: destination, reactor: reactor)
        connections.append(connection)
        if connection.state == .connecting {
          inFlight = true
          break
        }
      }
      #expect(inFlight, "16 connects to a listener with backlog 0 all completed")
    }

    @Test("loopback addresses: 127/8 and ::1, nothing else")
    func loopbackAddresses() throws {
      for (ip, expected) in [
        ("127.0.0.1", true), ("127.0.0.6", true), ("127.255.0.9", true), ("10.0.0.1", false),
        ("128.0.0.1", false), ("::1", true), ("::6", false), ("fe80::1", false),
      ] {
        #expect(Socket.isLoopback(try SocketAddress(ipAddress: ip, port: 80)) == expected, "\(ip)")
      }
    }
  }
}
