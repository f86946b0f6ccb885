import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import ProxyCore

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Upstream connects to this host")
struct UpstreamConnectorTests {
  @Test("a loopback destination is connected inside connect(2), from the configured loopback source")
  func connectsLocallyFromTheSource() throws {
    let server = try LoopbackServer(.banner("hello"))
    let destination = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
    let source = try SocketAddress(ipAddress: "127.0.0.6", port: 0)
    let fd = try #require(try UpstreamConnector.connectLocally(to: destination, from: source))
    defer { close(fd) }
    #expect(try address(of: fd, peer: true) == destination)
    #expect(try address(of: fd, peer: false).ipAddress == "127.0.0.6")
    var nodelay: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    #expect(getsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &nodelay, &length) == 0 && nodelay == 1)
    // The banner comes once the server's accept thread runs: wait for it as long as a loaded CI machine may
    // need (the socket is non-blocking), not a fixed second.
    var buffer = [UInt8](repeating: 0, count: 16)
    var received = 0
    let deadline = ContinuousClock.now + .seconds(15)
    while received < 5 && ContinuousClock.now < deadline {
      var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&ready, 1, 100) > 0 else { continue }
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, $0.count - received, 0) }
      if n <= 0 { break }
      received += n
    }
    #expect(String(decoding: buffer[0..<received], as: UTF8.self) == "hello")
    withExtendedLifetime(server) {}  // its deinit closes the listener, and with it a connection not yet accepted
  }

  @Test("IPv6 loopback (::1) is connected locally too")
  func connectsIPv6Loopback() throws {
    let listener = socket(AF_INET6, CInt(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    let any = try SocketAddress(ipAddress: "::1", port: 0)
    #expect(any.withSockAddr { bind(listener, $0, socklen_t($1)) } == 0)
    #expect(listen(listener, 8) == 0)
    var bound = sockaddr_in6()
    var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    _ = withUnsafeMutablePointer(to: &bound) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    let destination = try SocketAddress(ipAddress: "::1", port: Int(UInt16(bigEndian: bound.sin6_port)))
    let fd = try #require(try UpstreamConnector.connectLocally(to: destination, from: nil))
    defer { close(fd) }
    let accepted = accept(listener, nil, nil)
    #expect(accepted >= 0)
    close(accepted)
  }

  @Test("a refused loopback connect is an IOError naming the destination")
  func refusedIsAnError() throws {
    let closed = try LoopbackServer(.echo)
    let port = closed.port
    closed.close()
    let destination = try SocketAddress(ipAddress: "127.0.0.1", port: port)
    #expect {
      _ = try UpstreamConnector.connectLocally(to: destination, from: nil)
    } throws: { error in
      guard let io = error as? IOError else { return false }
      return io.errnoCode == ECONNREFUSED && "\(io)".contains("127.0.0.1:\(port)")
    }
  }

  @Test("a handshake still in flight (full accept queue) is left to NIO's connect and its timeout")
  func inFlightFallsBack() async throws {
    // A listener that never accepts, with the smallest backlog: once its queue is full, SYNs are dropped.
    let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
    #expect(any.withSockAddr { bind(listener, $0, socklen_t($1)) } == 0)
    #expect(listen(listener, 0) == 0)
    let destination = try address(of: listener, peer: false)
    var queued: [CInt] = []
    defer { queued.forEach { close($0) } }
    var inFlight = false
    for _ in 0..<16 {
      guard let fd = try UpstreamConnector.connectLocally(to: destination, from: nil) else {
        inFlight = true
        break
      }
      queued.append(fd)
    }
    #expect(inFlight, "16 connects to a listener with backlog 0 all completed")

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var config = Cluster(name: "full")
    config.connectTimeout = .milliseconds(300)
    let cluster = UpstreamCluster(config: config, stats: try StatsStore(config: StatsConfig()))
    let host = UpstreamHost(address: .socket(destination))
    let loop = group.next()
    // The connector then connects through NIO: its timeout fires (the SYN is dropped again), or the kernel
    // completed the handshake meanwhile. An in-flight handshake must never surface as an error of its own.
    do {
      let channel = try await loop.flatSubmit {
        UpstreamConnector.connect(to: host, cluster: cluster, on: loop)
      }.get()
      try await channel.close()
    } catch ChannelError.connectTimeout {
    } catch {
      Issue.record("connecting to a full accept queue failed with \(error)")
    }
    try await group.shutdownGracefully()
  }

  @Test("loopback addresses: 127/8 and ::1, nothing else")
  func loopbackAddresses() throws {
    for (ip, expected) in [
      ("127.0.0.1", true), ("127.0.0.6", true), ("127.255.0.9", true), ("10.0.0.1", false),
      ("128.0.0.1", false), ("::1", true), ("::6", false), ("fe80::1", false),
    ] {
      #expect(UpstreamConnector.isLoopback(try SocketAddress(ipAddress: ip, port: 80)) == expected, "\(ip)")
    }
  }

  private func address(of fd: CInt, peer: Bool) throws -> SocketAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
      }
    }
    guard rc == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
    let v4 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
    let ip = String(cString: inet_ntoa(v4.sin_addr))
    return try SocketAddress(ipAddress: ip, port: Int(UInt16(bigEndian: v4.sin_port)))
  }
}
