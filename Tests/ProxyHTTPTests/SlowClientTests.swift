import EnvoyAPI
import Foundation
import NIOCore
import ProxyCore
import SwiftProtobuf
import TestSupport
import Testing

@testable import ProxyHTTP

#if canImport(Glibc)
  import Glibc
#endif

/// Hostile and slow clients against the HTTP connection manager: a request head that never completes,
/// and a client that pipelines requests without reading a single response.
@Suite(.serialized, .timeLimit(.minutes(2))) struct SlowClientTests {
  /// CPU time the proxy's (only) event-loop thread has used so far.
  static func loopCPU(_ proxy: ProxyHarness) async throws -> Duration {
    try await proxy.group.next().submit { () -> Duration in
      var now = timespec()
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
      return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }.get()
  }

  static func hcm(_ configure: (inout HTTPConnectionManagerConfig.Proto) -> Void)
    -> HTTPConnectionManagerConfig.Proto
  {
    var hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
    configure(&hcm)
    return hcm
  }

  @Test func partialHeadIsAnswered408AfterRequestHeadersTimeout() async throws {
    let proxy = try await ProxyHarness(
      hcm: Self.hcm { $0.requestHeadersTimeout = .init(seconds: 0, nanos: 300_000_000) })
    let client = try TestClient(port: proxy.port)
    try client.send("GET / HTTP/1.1\r\nHo")
    let started = ContinuousClock.now
    let response = try await onThread { try client.readResponse() }
    #expect(response.status == 408)
    #expect(response.text == "request header timeout")
    #expect(response.header("connection") == "close")
    #expect(ContinuousClock.now - started < .seconds(5))
    #expect(try await onThread { client.isClosedByPeer() })
    #expect(proxy.counter("http.ingress.downstream_rq_header_timeout") == 1)
    #expect(proxy.counter("http.ingress.downstream_rq_4xx") == 1)
    await proxy.shutdown()
  }

  @Test func partialHeadIsAnswered408AfterStreamIdleTimeout() async throws {
    let proxy = try await ProxyHarness(
      hcm: Self.hcm { $0.streamIdleTimeout = .init(seconds: 0, nanos: 300_000_000) })
    let client = try TestClient(port: proxy.port)
    // A complete request first: the timer then runs for the keep-alive connection, and the partial head
    // that follows must still be bounded.
    try client.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try await onThread { try client.readResponse() }.status == 200)
    try client.send("GET /b HTTP/1.1\r\nHo")
    let response = try await onThread { try client.readResponse() }
    #expect(response.status == 408)
    #expect(response.text == "stream timeout")
    #expect(try await onThread { client.isClosedByPeer() })
    #expect(proxy.counter("http.ingress.downstream_rq_idle_timeout") == 1)
    await proxy.shutdown()
  }

  /// The connection idle timeout does not apply to a partial head (in Envoy a stream exists from the
  /// first byte). Before the fix its timer re-armed in the past on every firing: a hot loop.
  @Test func partialHeadPastTheIdleTimeoutCostsNoCPU() async throws {
    let proxy = try await ProxyHarness(
      hcm: Self.hcm {
        $0.commonHTTPProtocolOptions.idleTimeout = .init(seconds: 0, nanos: 100_000_000)
        $0.streamIdleTimeout = .init(seconds: 0)  // off: nothing bounds this head but the client
      })
    let client = try TestClient(port: proxy.port)
    try client.send("GET / HTTP/1.1\r\nHo")
    try await Task.sleep(for: .milliseconds(300))  // past the idle timeout
    let before = try await Self.loopCPU(proxy)
    try await Task.sleep(for: .seconds(1))
    let used = try await Self.loopCPU(proxy) - before
    #expect(used < .milliseconds(200), "the proxy's loop used \(used) of CPU in one idle second")
    // Still open, and the head completes normally.
    try client.send("st: h\r\n\r\n")
    #expect(try await onThread { try client.readResponse() }.status == 200)
    await proxy.shutdown()
  }

  /// 200,000 pipelined requests answered locally (a direct response of 4 KiB) to a client that never
  /// reads: the proxy stops reading once its output to that client is above the write watermark, so it
  /// answers only what the socket buffers hold (about 4 MiB on this kernel, ~1,000 replies) instead of
  /// queueing every reply in memory (before: every request it could read, tens of thousands in 4 s).
  @Test func pipelinedLocalRepliesToAClientThatNeverReadsStayBounded() async throws {
    var direct = Envoy_Config_Route_V3_Route()
    direct.match.prefix = "/"
    direct.directResponse.status = 200
    direct.directResponse.body.inlineString = String(repeating: "a", count: 4096)
    let proxy = try await ProxyHarness(
      hcm: hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [direct])]),
      upstreamAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 9), withUpstream: false)
    // ~200 bytes each, 40 MB in all: more than every socket buffer between the client and the proxy.
    let pad = String(repeating: "x", count: 150)
    let request = Array("GET /health HTTP/1.1\r\nHost: h.example\r\nX-Pad: \(pad)\r\n\r\n".utf8)
    let total = 200_000
    let sent = try await onThread { () throws -> (requests: Int, stalledFor: Duration) in
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      defer { Glibc.close(fd) }
      // A small receive buffer: the client reads nothing, and the replies it can hold stay few.
      var small: Int32 = 4096
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
      var addr = sockaddr_in()
      addr.sin_family = sa_family_t(AF_INET)
      addr.sin_port = in_port_t(UInt16(proxy.port).bigEndian)
      addr.sin_addr.s_addr = inet_addr("127.0.0.1")
      let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard rc == 0 else { throw TestFailure("connect: \(errno)") }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      // Send as many requests as the proxy takes within 4 s (bounded in count and time), never reading.
      var batch: [UInt8] = []
      for _ in 0..<1000 { batch += request }
      var requests = 0
      var offset = 0
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(4)
      var lastProgress = clock.now
      while requests < total && clock.now < deadline {
        let n = batch.withUnsafeBytes {
          send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
        }
        if n < 0 {
          guard errno == EAGAIN || errno == EWOULDBLOCK else { throw TestFailure("send: \(errno)") }
          usleep(10_000)
          continue
        }
        lastProgress = clock.now
        offset += n
        if offset == batch.count {
          offset = 0
          requests += 1000
        }
      }
      // Report while the connection is still open.
      return (requests, deadline - lastProgress)
    }
    let answered = proxy.counter("http.ingress.downstream_rq_total")
    #expect(answered > 0)
    // The proxy stopped reading: the client's sends made no progress at all for the last second and more
    // (before the fix the proxy read and answered everything, so they never stalled).
    #expect(
      sent.stalledFor > .seconds(1),
      "sends never stalled: \(sent.requests) requests sent, \(answered) answered")
    #expect(sent.requests < total, "all \(total) requests went in: the proxy never stopped reading")
    // What was answered fits the socket buffers and the write watermark.
    #expect(
      answered < 5_000, "the proxy answered \(answered) pipelined requests to a client that reads nothing")
    await proxy.shutdown()
  }
}
