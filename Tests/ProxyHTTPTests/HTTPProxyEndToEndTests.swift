import EnvoyAPI
import Foundation
import NIOCore
import ProxyCore
import SwiftProtobuf
import TestSupport
import Testing

@testable import ProxyHTTP

/// Real sockets on 127.0.0.1: client → pilotfish HCM listener → test origin.
@Suite(.serialized) struct HTTPProxyEndToEndTests {
  @Test func keepAliveReusesOneUpstreamConnection() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    for i in 0..<5 {
      try client.send("GET /hello/\(i) HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n")
      let response = try client.readResponse()
      #expect(response.status == 200)
      #expect(response.text.hasPrefix("GET /hello/\(i) HTTP/1.1\r\n"))
      #expect(response.text.lowercased().contains("x-forwarded-proto: http"))
      #expect(response.text.lowercased().contains("x-request-id: "))
      #expect(response.header("server") == "envoy")
      #expect(response.header("x-envoy-upstream-service-time") != nil)
    }
    #expect(proxy.counter("cluster.upstream.upstream_cx_total") == 1)
    #expect(proxy.upstream!.connections.load(ordering: .relaxed) == 1)
    #expect(proxy.counter("cluster.upstream.upstream_rq_total") == 5)
    #expect(proxy.counter("cluster.upstream.upstream_rq_200") == 5)
    #expect(proxy.counter("cluster.upstream.upstream_rq_2xx") == 5)
    #expect(proxy.counter("http.ingress.downstream_rq_2xx") == 5)
    #expect(proxy.counter("http.ingress.downstream_rq_total") == 5)
    #expect(proxy.counter("cluster.upstream.upstream_cx_http1_total") == 1)
    await proxy.shutdown()
  }

  @Test func upstreamIdleTimeoutClosesOnlyIdleConnections() async throws {
    let proxy = try await ProxyHarness(clusterIdleTimeout: .milliseconds(500))
    let client = try TestClient(port: proxy.port)
    func get() throws -> Int {
      try client.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
      return try client.readResponse().status
    }
    // A request every 50 ms for 1.5 s, three times the timeout: never idle that long, so never closed.
    // Blocking sleeps on a thread of its own keep the gaps short even when the test pool is busy; the
    // longest gap is measured, and the check only applies when the machine kept it well under the timeout.
    let steady = try await onThread { () throws -> (longestGap: Duration, closes: UInt64, connections: Int) in
      let clock = ContinuousClock()
      var longest = Duration.zero
      var last = clock.now
      for round in 0..<30 {
        if round > 0 { usleep(50_000) }
        longest = max(longest, clock.now - last)
        guard try get() == 200 else { throw TestFailure("steady request failed") }
        last = clock.now
      }
      // Read the counters right after the last response, and count the time that took as a gap too.
      let closes = proxy.counter("cluster.upstream.upstream_cx_idle_timeout")
      let connections = proxy.upstream!.connections.load(ordering: .relaxed)
      return (max(longest, clock.now - last), closes, connections)
    }
    if steady.longestGap < .milliseconds(350) {
      #expect(steady.connections == 1)
      #expect(steady.closes == 0)
    }
    // Idle now: every upstream connection is closed by the timeout, and the next request opens a new one.
    #expect(
      eventually {
        proxy.counter("cluster.upstream.upstream_cx_idle_timeout")
          == UInt64(proxy.upstream!.connections.load(ordering: .relaxed))
      })
    let connectionsBefore = proxy.upstream!.connections.load(ordering: .relaxed)
    #expect(try get() == 200)
    #expect(proxy.upstream!.connections.load(ordering: .relaxed) == connectionsBefore + 1)
    await proxy.shutdown()
  }

  @Test func hopByHopHeadersAreDropped() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
        + "X-Request-Id: given\r\n\r\n")
    let response = try client.readResponse()
    let seen = response.text.lowercased()
    #expect(!seen.contains("x-secret"))
    #expect(!seen.contains("keep-alive"))
    #expect(seen.contains("x-request-id: given"))
    #expect(!seen.contains("connection:"))
    await proxy.shutdown()
  }

  @Test func postWithContentLengthStreamsOneMebibyteBothWays() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    let size = 1024 * 1024 + 17
    let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let head = Array("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: \(size)\r\n\r\n".utf8)
    let sender = Thread { try? client.send(head + body) }
    sender.start()
    let response = try client.readResponse()
    #expect(response.status == 200)
    #expect(response.body.count == size)
    #expect(response.body == body)
    // The connection stays usable.
    try client.send("GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try client.readResponse().status == 200)
    await proxy.shutdown()
  }

  @Test func postWithChunkedBodyStreamsBothWays() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    let body = chunkedBody(total: 1024 * 1024 + 5, chunk: 7000)
    let head = Array("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    let sender = Thread { try? client.send(head + body) }
    sender.start()
    let response = try client.readResponse()
    #expect(response.status == 200)
    #expect(response.framing == .chunked)
    // The chunked bytes arrive exactly as sent (the client's framer hands over the raw chunked body).
    #expect(response.body == body)
    await proxy.shutdown()
  }

  @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    var burst = ""
    for i in 0..<4 { burst += "GET /p\(i) HTTP/1.1\r\nHost: h\r\n\r\n" }
    burst += "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    burst += "GET /last HTTP/1.1\r\nHost: h\r\n\r\n"
    try client.send(burst)
    for i in 0..<4 {
      let response = try client.readResponse()
      #expect(response.text.hasPrefix("GET /p\(i) "))
    }
    #expect(try client.readResponse().text == "hello")
    #expect(try client.readResponse().text.hasPrefix("GET /last "))
    #expect(proxy.counter("cluster.upstream.upstream_cx_total") == 1)
    await proxy.shutdown()
  }

  @Test func noRouteIs404() async throws {
    let hcm = hcmProto(virtualHosts: [
      virtualHostProto("a", domains: ["a.example"], routes: [routeProto(prefix: "/api")])
    ])
    let proxy = try await ProxyHarness(hcm: hcm)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /other HTTP/1.1\r\nHost: a.example\r\n\r\n")
    #expect(try client.readResponse().status == 404)
    try client.send("GET /api HTTP/1.1\r\nHost: b.example\r\n\r\n")
    #expect(try client.readResponse().status == 404)
    try client.send("GET /api/x HTTP/1.1\r\nHost: A.Example\r\n\r\n")
    #expect(try client.readResponse().status == 200)
    #expect(proxy.counter("http.ingress.no_route") == 2)
    #expect(proxy.counter("http.ingress.downstream_rq_4xx") == 2)
    await proxy.shutdown()
  }

  @Test func closedUpstreamPortIs503WithUF() async throws {
    // A port that was bound and closed again: nothing listens there.
    let probe = try TestUpstream(group: NIOSingletons.posixEventLoopGroup)
    let dead = probe.address
    probe.close()
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("pf-hcm-\(UUID().uuidString).log")
      .path
    var hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
    var accessLog = Envoy_Config_Accesslog_V3_AccessLog()
    accessLog.name = "envoy.access_loggers.file"
    var file = Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog()
    file.path = log
    file.format = "%RESPONSE_CODE% %RESPONSE_FLAGS% %PROTOCOL% %REQ(:PATH)% %UPSTREAM_CLUSTER%\n"
    accessLog.typedConfig = try Google_Protobuf_Any(message: file)
    hcm.accessLog = [accessLog]
    let proxy = try await ProxyHarness(hcm: hcm, upstreamAddress: dead, withUpstream: false)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    let response = try client.readResponse()
    #expect(response.status == 503)
    #expect(response.text == HTTP1LocalReplyText.upstreamConnectionFailure)
    #expect(proxy.counter("cluster.upstream.upstream_cx_connect_fail") == 1)
    proxy.accessLog.flush()
    let line = try String(contentsOfFile: log, encoding: .utf8)
    #expect(line == "503 UF HTTP/1.1 /x upstream\n")
    try? FileManager.default.removeItem(atPath: log)
    // Still keep-alive after a local 503.
    try client.send("GET /y HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try client.readResponse().status == 503)
    await proxy.shutdown()
  }

  /// Istio's default access-log format (`EnvoyTextLogFormat`) over the data path: the details, the
  /// cluster and the connect error reach the line.
  @Test func istioAccessLogFormatOverTheDataPath() async throws {
    let probe = try TestUpstream(group: NIOSingletons.posixEventLoopGroup)
    let dead = probe.address
    probe.close()
    let log = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pf-istio-\(UUID().uuidString).log"
    )
    .path
    defer { try? FileManager.default.removeItem(atPath: log) }
    var hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
    var accessLog = Envoy_Config_Accesslog_V3_AccessLog()
    accessLog.name = "envoy.access_loggers.file"
    var file = Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog()
    file.path = log
    file.logFormat.textFormatSource.inlineString =
      "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" "
      + "%UPSTREAM_CLUSTER_RAW% %ROUTE_NAME%\n"
    accessLog.typedConfig = try Google_Protobuf_Any(message: file)
    hcm.accessLog = [accessLog]
    let proxy = try await ProxyHarness(hcm: hcm, upstreamAddress: dead, withUpstream: false)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try client.readResponse().status == 503)
    proxy.accessLog.flush()
    // Loopback usually refuses at connect(2) ("immediate"), else through SO_ERROR ("delayed").
    let failed = try String(contentsOfFile: log, encoding: .utf8)
    #expect(
      [
        "503 UF upstream_reset_before_response_started{connection_failure} "
          + "\"immediate_connect_error:_Connection_refused\" upstream -\n",
        "503 UF upstream_reset_before_response_started{connection_failure} "
          + "\"delayed_connect_error:_Connection_refused\" upstream -\n",
      ].contains(failed), "\(failed)")
    await proxy.shutdown()

    let served = try await ProxyHarness(hcm: hcm)
    let second = try TestClient(port: served.port)
    try second.send("GET /y HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try second.readResponse().status == 200)
    served.accessLog.flush()
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    #expect(lines.last == "200 - via_upstream \"-\" upstream -")
    await served.shutdown()
  }

  @Test func directResponseAndRedirect() async throws {
    var direct = Envoy_Config_Route_V3_Route()
    direct.match.path = "/health"
    direct.directResponse.status = 200
    direct.directResponse.body.inlineString = "healthy"
    var redirect = Envoy_Config_Route_V3_Route()
    redirect.match.prefix = "/old"
    redirect.redirect.prefixRewrite = "/new"
    redirect.redirect.httpsRedirect = true
    let hcm = hcmProto(virtualHosts: [
      virtualHostProto("all", domains: ["*"], routes: [direct, redirect, routeProto()])
    ])
    let proxy = try await ProxyHarness(hcm: hcm)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /health HTTP/1.1\r\nHost: h\r\n\r\n")
    let health = try client.readResponse()
    #expect(health.status == 200)
    #expect(health.text == "healthy")
    try client.send("GET /old/page?q=1 HTTP/1.1\r\nHost: h:80\r\n\r\n")
    let moved = try client.readResponse()
    #expect(moved.status == 301)
    #expect(moved.header("location") == "https://h/new/page?q=1")
    #expect(proxy.counter("http.ingress.rq_direct_response") == 1)
    #expect(proxy.counter("http.ingress.rq_redirect") == 1)
    #expect(proxy.upstream!.requests.load(ordering: .relaxed) == 0)
    await proxy.shutdown()
  }

  @Test func prefixRewriteAndHeadersReachTheUpstream() async throws {
    var route = routeProto(prefix: "/api/")
    route.route.prefixRewrite = "/v2/"
    route.route.hostRewriteLiteral = "backend.internal"
    var add = Envoy_Config_Core_V3_HeaderValueOption()
    add.header.key = "x-added"
    add.header.value = "yes"
    route.requestHeadersToAdd = [add]
    route.requestHeadersToRemove = ["x-remove-me"]
    var resp = Envoy_Config_Core_V3_HeaderValueOption()
    resp.header.key = "x-resp"
    resp.header.value = "r"
    route.responseHeadersToAdd = [resp]
    route.responseHeadersToRemove = ["server"]
    let hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [route])])
    let proxy = try await ProxyHarness(hcm: hcm)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /api/users?id=3 HTTP/1.1\r\nHost: front\r\nX-Remove-Me: 1\r\n\r\n")
    let response = try client.readResponse()
    let seen = response.text.lowercased()
    #expect(response.text.hasPrefix("GET /v2/users?id=3 HTTP/1.1\r\n"))
    #expect(seen.contains("host: backend.internal"))
    #expect(!seen.contains("host: front"))
    #expect(seen.contains("x-added: yes"))
    #expect(!seen.contains("x-remove-me"))
    #expect(seen.contains("x-envoy-original-path: /api/users?id=3"))
    #expect(response.header("x-resp") == "r")
    await proxy.shutdown()
  }

  @Test func smugglingVectorIsRejectedAndTheConnectionClosed() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    let response = try client.readResponse()
    #expect(response.status == 400)
    #expect(response.header("connection") == "close")
    #expect(client.isClosedByPeer())
    #expect(proxy.upstream!.requests.load(ordering: .relaxed) == 0)
    #expect(proxy.counter("http.ingress.downstream_cx_protocol_error") == 1)
    await proxy.shutdown()
  }

  @Test func drainAddsConnectionClose() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send("GET /before HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try client.readResponse().header("connection") == nil)
    proxy.context.drain.start(inboundOnly: false)
    try client.send("GET /during HTTP/1.1\r\nHost: h\r\n\r\n")
    let response = try client.readResponse()
    #expect(response.status == 200)
    #expect(response.header("connection") == "close")
    #expect(client.isClosedByPeer())
    #expect(proxy.counter("http.ingress.downstream_cx_drain_close") == 1)
    await proxy.shutdown()
  }

  @Test func upstreamConnectionCloseRetiresTheConnection() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send("GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
    let first = try client.readResponse()
    #expect(first.text == "ok")
    #expect(first.header("connection") == nil)  // downstream keep-alive is independent
    try client.send("GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
    #expect(try client.readResponse().status == 200)
    #expect(proxy.counter("cluster.upstream.upstream_cx_total") == 2)
    await proxy.shutdown()
  }

  @Test func expectContinueIsAnsweredLocally() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    let interim = try client.readResponse()
    #expect(interim.status == 100)
    try client.send("abc")
    let response = try client.readResponse()
    #expect(response.status == 200)
    #expect(response.text == "abc")
    await proxy.shutdown()
  }

  @Test func clientHalfCloseStillGetsTheResponse() async throws {
    let proxy = try await ProxyHarness()
    let client = try TestClient(port: proxy.port)
    try client.send("GET /half HTTP/1.1\r\nHost: h\r\n\r\n")
    client.shutdownWrite()
    let response = try client.readResponse()
    #expect(response.status == 200)
    // `connection: close` is there when the FIN arrived before the response head; either way the
    // connection closes after the response.
    #expect(client.isClosedByPeer())
    await proxy.shutdown()
  }

  @Test func routeTimeoutIs504() async throws {
    var route = routeProto()
    route.route.timeout = .init(seconds: 0, nanos: 200_000_000)
    let hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [route])])
    let proxy = try await ProxyHarness(hcm: hcm)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /silent HTTP/1.1\r\nHost: h\r\n\r\n")
    let response = try client.readResponse()
    #expect(response.status == 504)
    #expect(response.text == "upstream request timeout")
    #expect(proxy.counter("cluster.upstream.upstream_rq_timeout") == 1)
    await proxy.shutdown()
  }

  @Test func websocketUpgradeBecomesATunnel() async throws {
    var hcm = hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
    var upgrade = HTTPConnectionManagerConfig.Proto.UpgradeConfig()
    upgrade.upgradeType = "websocket"
    hcm.upgradeConfigs = [upgrade]
    let proxy = try await ProxyHarness(hcm: hcm)
    let client = try TestClient(port: proxy.port)
    try client.send("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    let response = try client.readResponse()
    #expect(response.status == 101)
    try client.send("raw bytes \u{1}\u{2}")
    #expect(try client.readBytes(12) == Array("raw bytes \u{1}\u{2}".utf8))
    // Without upgrade_configs the same request is refused.
    let plain = try await ProxyHarness()
    let other = try TestClient(port: plain.port)
    try other.send("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    #expect(try other.readResponse().status == 403)
    await plain.shutdown()
    await proxy.shutdown()
  }

  static let curlMandatory =
    TestEnvironment.mandatory

  @Test(
    .enabled(
      if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") || curlMandatory,
      "curl not installed (Debian: apt-get install curl)"))
  func curlThroughTheProxy() async throws {
    let proxy = try await ProxyHarness()
    let run = try await onThread {
      try ChildProcess.run(
        "/usr/bin/curl",
        [
          "-s", "-S", "--max-time", "10", "-H", "Host: curl.example",
          "http://127.0.0.1:\(proxy.port)/one", "http://127.0.0.1:\(proxy.port)/two",
        ], timeout: .seconds(30))
    }
    #expect(run.termination == .exited(0), "curl: \(run.termination) \(run.stderrText)")
    let output = run.stdout
    let text = String(decoding: output, as: UTF8.self)
    #expect(text.contains("GET /one HTTP/1.1"))
    #expect(text.contains("GET /two HTTP/1.1"))
    #expect(text.lowercased().contains("host: curl.example"))
    #expect(proxy.counter("cluster.upstream.upstream_cx_total") == 1)
    await proxy.shutdown()
  }
}

@Suite("Request ids")
struct RequestIDGeneratorTests {
  @Test func version4UUIDsUniqueAcrossRefills() {
    let generator = RequestIDGenerator()
    var seen = Set<String>()
    for _ in 0..<600 {
      let id = generator.next()
      seen.insert(id)
      let parts = id.split(separator: "-")
      #expect(parts.map(\.count) == [8, 4, 4, 4, 12], "\(id)")
      #expect(parts[2].first == "4")
      #expect(["8", "9", "a", "b"].contains(parts[3].first!))
      #expect(id.allSatisfy { $0 == "-" || $0.isHexDigit && !$0.isUppercase })
    }
    #expect(seen.count == 600)
  }
}
