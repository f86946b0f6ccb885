import Foundation
import NIOCore
import ProxyCore
import Synchronization
import TestSupport
import Testing

@testable import ProxyHTTP

#if canImport(Glibc)
  import Glibc
#endif

/// An origin on plain blocking sockets, each connection on its own thread: it answers every request with
/// `200 ok` and keeps the connection; the first connection answers once, then waits for `reset()` and
/// closes with a TCP reset (SO_LINGER 0), signalling `resetSent`.
final class ResettingOrigin: @unchecked Sendable {
  let port: Int
  let connections = Atomic<Int>(0)
  let requests = Atomic<Int>(0)
  private let fd: Int32
  private let resetSignal = DispatchSemaphore(value: 0)
  /// Signalled once the reset has been sent.
  let resetSent = DispatchSemaphore(value: 0)

  init() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(listener, 16) == 0 else {
      Glibc.close(listener)
      throw TestFailure("origin cannot listen")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    fd = listener
    port = Int(UInt16(bigEndian: address.sin_port))
    Thread.detachNewThread { [self] in
      while true {
        let client = accept(listener, nil, nil)
        if client < 0 { return }
        let first = connections.add(1, ordering: .relaxed).newValue == 1
        Thread.detachNewThread { self.serve(client, resetAfterFirstResponse: first) }
      }
    }
  }

  /// Lets the first connection send its reset.
  func reset() { resetSignal.signal() }

  /// Stops accepting, and releases a first connection still waiting for `reset()` (a test that failed early).
  func close() {
    shutdown(fd, Int32(SHUT_RDWR))
    resetSignal.signal()
  }

  deinit { Glibc.close(fd) }

  private func serve(_ client: Int32, resetAfterFirstResponse: Bool) {
    var pending: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    let end: [UInt8] = Array("\r\n\r\n".utf8)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
      if n <= 0 {
        Glibc.close(client)
        return
      }
      pending += chunk[0..<n]
      while let range = pending.firstRange(of: end) {
        pending.removeSubrange(..<range.upperBound)
        requests.add(1, ordering: .relaxed)
        let reply = Array("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".utf8)
        _ = reply.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        if resetAfterFirstResponse {
          resetSignal.wait()
          var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
          setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
          Glibc.close(client)
          resetSent.signal()
          return
        }
      }
    }
  }
}

@Suite(.serialized) struct PooledConnectionRetryTests {
  /// The race a pool cannot see coming: the origin resets an idle pooled connection while a request for it
  /// is already waiting. The proxy's worker is held so both events are ready in one epoll batch, request
  /// first; writing the request then fails inside the flush, nothing reached the origin, and the request
  /// goes out again on a new connection instead of failing with 503 UC.
  @Test func aRequestOnAResetPooledConnectionIsSentAgainOnANewOne() async throws {
    let origin = try ResettingOrigin()
    defer { origin.close() }
    let proxy = try await ProxyHarness(
      upstreamAddress: try SocketAddress(ipAddress: "127.0.0.1", port: origin.port), withUpstream: false)
    let client = try TestClient(port: proxy.port)
    let first = try await onThread { () throws -> Int in
      try client.send("GET /one HTTP/1.1\r\nHost: h\r\n\r\n")
      return try client.readResponse().status
    }
    #expect(first == 200)
    // Hold the proxy's only worker until the request is queued and the origin has reset the connection.
    let held = DispatchSemaphore(value: 0)
    let resetSent = origin.resetSent
    #expect(
      proxy.engine.workers[0].remote.post { _ in
        held.signal()
        _ = resetSent.wait(timeout: .now() + 5)
      })
    let second = try await onThread { () throws -> TestResponse in
      held.wait()
      try client.send("GET /two HTTP/1.1\r\nHost: h\r\n\r\n")
      usleep(50_000)
      origin.reset()
      return try client.readResponse()
    }
    #expect(second.status == 200)
    #expect(second.text == "ok")
    #expect(origin.connections.load(ordering: .relaxed) == 2)
    #expect(origin.requests.load(ordering: .relaxed) == 2)
    #expect(proxy.counter("cluster.upstream.upstream_cx_total") == 2)
    #expect(proxy.counter("http.ingress.downstream_rq_2xx") == 2)
    await proxy.shutdown()
  }
}
