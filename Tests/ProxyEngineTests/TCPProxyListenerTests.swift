import Foundation
import NIOCore
import TestSupport
import Testing

@testable import ProxyCore
@testable import ProxyEngine

extension SocketSuites {
  /// tcp_proxy listeners end to end: the listener manager binding them on a reactor worker, real sockets on
  /// both sides.
  @Suite("tcp_proxy listeners over real sockets", .timeLimit(.minutes(2)))
  struct TCPProxyListenerTests {
    @Test("echo through the proxy, with half-close and byte stats")
    func echoWithHalfClose() async throws {
      let upstream = try LoopbackServer(.echo)
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("echo", ports: [upstream.port]))
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      let payload = (0..<300_000).map { UInt8($0 % 253) }
      #expect(client.send(payload))
      client.finishWriting()  // half-close: the upstream still answers
      let echoed = client.readAll()
      client.close()
      #expect(echoed == payload)
      #expect(
        await CoreHarness.eventually { core.counter("tcp.front.downstream_cx_rx_bytes_total") == 300_000 })
      #expect(core.counter("tcp.front.downstream_cx_tx_bytes_total") == 300_000)
      #expect(core.counter("cluster.echo.upstream_cx_total") == 1)
      #expect(
        await CoreHarness.eventually {
          core.stats.gaugeValue("listener.127.0.0.1_0.downstream_cx_active") ?? 0 == 0
        })
    }

    @Test("a slow downstream reader pauses upstream reads; every byte arrives")
    func backpressureSlowDownstream() async throws {
      let total = 24 * 1024 * 1024
      let upstream = try LoopbackServer(.source(total))
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("src", ports: [upstream.port])) {
        listener in
        listener.perConnectionBufferLimitBytes = 64 * 1024
      }
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      // 16 KiB every 200 µs at first, then fast: the proxy must stop reading the upstream meanwhile.
      var received = 0
      var buffer = [UInt8](repeating: 0, count: 16 * 1024)
      for _ in 0..<200 {
        let n = read(client.fd, &buffer, buffer.count)
        if n <= 0 { break }
        received += n
        usleep(200)
      }
      received += client.countAll()
      client.close()
      #expect(received == total)
      #expect(core.counter("tcp.front.upstream_flow_control_paused_reading_total") > 0)
      #expect(core.counter("tcp.front.upstream_flow_control_resumed_reading_total") > 0)
    }

    @Test("a slow upstream reader pauses downstream reads; every byte arrives")
    func backpressureSlowUpstream() async throws {
      let total = 16 * 1024 * 1024
      let upstream = try LoopbackServer(.slowSink(chunk: 16 * 1024, pauseMicros: 100))
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("sink", ports: [upstream.port])) {
        listener in
        listener.perConnectionBufferLimitBytes = 64 * 1024
      }
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      let chunk = [UInt8](repeating: 7, count: 1 << 20)
      for _ in 0..<(total >> 20) { #expect(client.send(chunk)) }
      client.finishWriting()
      let reply = String(decoding: client.readAll(), as: UTF8.self)
      client.close()
      #expect(reply == "\(total)")
      #expect(core.counter("tcp.front.downstream_flow_control_paused_reading_total") > 0)
    }

    @Test(
      "connect failure closes the downstream and counts upstream_cx_connect_fail, retrying max_connect_attempts"
    )
    func connectFailure() async throws {
      let closed = try LoopbackServer(.echo)
      let port = closed.port
      closed.close()
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("dead", ports: [port])) { _ in
      } proxy: {
        $0.maxConnectAttempts = 3
      }
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      #expect(client.readAll().isEmpty)
      client.close()
      #expect(await CoreHarness.eventually { core.counter("cluster.dead.upstream_cx_connect_fail") == 3 })
    }

    @Test("no cluster: downstream_cx_no_route, connection closed")
    func unknownCluster() async throws {
      let core = try CoreHarness.tcp(cluster: nil, route: .cluster("missing"))
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      #expect(client.readAll().isEmpty)
      client.close()
      #expect(await CoreHarness.eventually { core.counter("tcp.front.downstream_cx_no_route") == 1 })
    }

    @Test("circuit breaker max_connections: the extra connection is refused with upstream_cx_overflow")
    func circuitBreaker() async throws {
      let upstream = try LoopbackServer(.echo)
      let core = try CoreHarness.tcp(
        cluster: try Config.staticCluster("one", ports: [upstream.port]) {
          $0.defaultThresholds.maxConnections = 1
        })
      try await core.start()
      defer { Task { await core.stop() } }
      let first = try LoopbackClient(port: core.port("front"))
      #expect(first.send("ping"))
      var buffer = [UInt8](repeating: 0, count: 4)
      #expect(read(first.fd, &buffer, 4) == 4)
      let second = try LoopbackClient(port: core.port("front"))
      #expect(second.readAll().isEmpty)
      second.close()
      first.close()
      #expect(await CoreHarness.eventually { core.counter("cluster.one.upstream_cx_overflow") == 1 })
    }

    @Test("weighted clusters split connections; round robin spreads over hosts")
    func weightedAndRoundRobin() async throws {
      let a = try LoopbackServer(.banner("A"))
      let b1 = try LoopbackServer(.banner("B"))
      let b2 = try LoopbackServer(.banner("B"))
      let core = try CoreHarness(
        listeners: [],
        clusters: [
          try Config.staticCluster("a", ports: [a.port]),
          try Config.staticCluster("b", ports: [b1.port, b2.port]),
        ])
      let listener = try Config.tcpProxyListener(
        "front", cluster: .weighted([("a", 1), ("b", 3)]), stats: core.stats)
      let running = try CoreHarness(listeners: [listener], clusters: [], sharing: core)
      try await running.start()
      defer { Task { await running.stop() } }
      var counts: [String: Int] = [:]
      for _ in 0..<200 {
        let client = try LoopbackClient(port: running.port("front"))
        counts[String(decoding: client.readAll(), as: UTF8.self), default: 0] += 1
        client.close()
      }
      #expect(counts["A", default: 0] + counts["B", default: 0] == 200)
      #expect((20...80).contains(counts["A", default: 0]), "A got \(counts)")
      #expect(abs(b1.accepted.withLockedValue { $0 } - b2.accepted.withLockedValue { $0 }) <= 1)
    }

    @Test("STRICT_DNS cluster resolved through /etc/hosts (localhost)")
    func strictDNS() async throws {
      let upstream = try LoopbackServer(.banner("dns"))
      var cluster = Cluster(name: "dns")
      cluster.discovery = .strictDNS
      cluster.dnsLookupFamily = .v4Only
      cluster.endpoints = [Cluster.Endpoint(address: .dns(host: "localhost", port: upstream.port))]
      let core = try CoreHarness.tcp(cluster: cluster)
      try await core.start()
      defer { Task { await core.stop() } }
      #expect(core.stats.gaugeValue("cluster.dns.membership_total") == 1)
      #expect(core.counter("cluster.dns.update_success") == 1)
      let client = try LoopbackClient(port: core.port("front"))
      #expect(String(decoding: client.readAll(), as: UTF8.self) == "dns")
      client.close()
    }

    @Test("LOGICAL_DNS cluster: one host, the first address")
    func logicalDNS() async throws {
      let upstream = try LoopbackServer(.banner("logical"))
      var cluster = Cluster(name: "logical")
      cluster.discovery = .logicalDNS
      cluster.dnsLookupFamily = .v4Only
      cluster.endpoints = [Cluster.Endpoint(address: .dns(host: "localhost", port: upstream.port))]
      let core = try CoreHarness.tcp(cluster: cluster)
      try await core.start()
      defer { Task { await core.stop() } }
      #expect(core.stats.gaugeValue("cluster.logical.membership_total") == 1)
      let client = try LoopbackClient(port: core.port("front"))
      #expect(String(decoding: client.readAll(), as: UTF8.self) == "logical")
      client.close()
    }

    @Test("a DNS name that does not resolve leaves the cluster empty: no healthy upstream")
    func unresolvableName() async throws {
      var cluster = Cluster(name: "nowhere")
      cluster.discovery = .strictDNS
      cluster.endpoints = [Cluster.Endpoint(address: .dns(host: "does-not-exist.invalid", port: 80))]
      let core = try CoreHarness.tcp(cluster: cluster)
      try await core.start()
      defer { Task { await core.stop() } }
      #expect(core.counter("cluster.nowhere.update_failure") == 1)
      let client = try LoopbackClient(port: core.port("front"))
      #expect(client.readAll().isEmpty)
      client.close()
      #expect(await CoreHarness.eventually { core.counter("cluster.nowhere.upstream_cx_none_healthy") == 1 })
    }

    @Test("pipe (Unix socket) endpoint")
    func pipeEndpoint() async throws {
      let path = "/tmp/pf-test-\(getpid())-\(Int.random(in: 0..<1_000_000)).sock"
      defer { unlink(path) }
      let upstream = try LoopbackServer(.banner("unix"), unixPath: path)
      _ = upstream
      var cluster = Cluster(name: "uds")
      cluster.endpoints = [Cluster.Endpoint(address: .pipe(path: path))]
      let core = try CoreHarness.tcp(cluster: cluster)
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      #expect(String(decoding: client.readAll(), as: UTF8.self) == "unix")
      client.close()
    }

    @Test("idle timeout closes both sides")
    func idleTimeout() async throws {
      let upstream = try LoopbackServer(.echo)
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("echo", ports: [upstream.port])) { _ in
      } proxy: {
        $0.idleTimeout = .milliseconds(200)
      }
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      #expect(client.send("x"))
      #expect(client.readAll() == Array("x".utf8))  // EOF arrives when the idle timer fires
      client.close()
      #expect(core.counter("tcp.front.idle_timeout") == 1)
    }

    @Test("access log line per connection")
    func accessLog() async throws {
      let upstream = try LoopbackServer(.banner("hello"))
      let path = "/tmp/pf-access-\(getpid())-\(Int.random(in: 0..<1_000_000)).log"
      defer { unlink(path) }
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("c", ports: [upstream.port])) { _ in
      } proxy: {
        $0.accessLogs = [
          AccessLogConfig(path: path, format: "%UPSTREAM_CLUSTER% %BYTES_SENT% %RESPONSE_FLAGS%\n")
        ]
      }
      try core.accessLog.open(path)
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      _ = client.readAll()
      client.close()
      #expect(
        await CoreHarness.eventually {
          core.accessLog.flush()
          return (try? String(contentsOfFile: path, encoding: .utf8)) == "c 5 -\n"
        })
    }

    @Test("a refused upstream logs UF and Envoy's transport failure reason")
    func accessLogOfAConnectFailure() async throws {
      let probe = try LoopbackServer(.echo)
      let deadPort = probe.port
      probe.close()
      let path = "/tmp/pf-access-\(getpid())-\(Int.random(in: 0..<1_000_000)).log"
      defer { unlink(path) }
      let core = try CoreHarness.tcp(cluster: try Config.staticCluster("dead", ports: [deadPort])) { _ in
      } proxy: {
        $0.accessLogs = [
          AccessLogConfig(
            path: path,
            format:
              "%RESPONSE_FLAGS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %UPSTREAM_CLUSTER_RAW% %ROUTE_NAME%\n"
          )
        ]
      }
      try core.accessLog.open(path)
      try await core.start()
      defer { Task { await core.stop() } }
      let client = try LoopbackClient(port: core.port("front"))
      _ = client.readAll()
      client.close()
      // A refused loopback connect fails inside connect(2): Envoy calls that an immediate connect error.
      #expect(
        await CoreHarness.eventually {
          core.accessLog.flush()
          return (try? String(contentsOfFile: path, encoding: .utf8))
            == "UF \"immediate_connect_error:_Connection_refused\" dead -\n"
        })
    }
  }
}

extension CoreHarness {
  /// One tcp_proxy listener "front" on 127.0.0.1:0 in front of `cluster`.
  static func tcp(
    cluster: Cluster?, route: TcpProxyConfig.Route? = nil,
    listener configureListener: (inout Listener) -> Void = { _ in },
    proxy configureProxy: (inout TcpProxyConfig) -> Void = { _ in }
  ) throws -> CoreHarness {
    let seed = try CoreHarness(listeners: [], clusters: cluster.map { [$0] } ?? [])
    var listener = try Config.tcpProxyListener(
      "front", cluster: route ?? .cluster(cluster!.name), stats: seed.stats, configure: configureProxy)
    configureListener(&listener)
    return try CoreHarness(listeners: [listener], clusters: [], sharing: seed)
  }

  /// A harness with new listeners that shares `other`'s stats and clusters.
  convenience init(listeners: [Listener], clusters: [Cluster], sharing other: CoreHarness) throws {
    self.init(other: other, listeners: listeners)
  }
}

extension SocketSuites {
  @Suite("Listener filters pick the chain over real sockets", .timeLimit(.minutes(2)))
  struct ListenerFilterSocketTests {
    @Test(
      "tls_inspector SNI/ALPN and http_inspector choose the filter chain; the sniffed bytes are forwarded")
    func inspectorsChooseChains() async throws {
      let sniServer = try LoopbackServer(.echo)
      let alpnServer = try LoopbackServer(.echo)
      let httpServer = try LoopbackServer(.echo)
      let rawServer = try LoopbackServer(.echo)
      let seed = try CoreHarness(
        listeners: [],
        clusters: [
          try Config.staticCluster("sni", ports: [sniServer.port]),
          try Config.staticCluster("alpn", ports: [alpnServer.port]),
          try Config.staticCluster("http", ports: [httpServer.port]),
          try Config.staticCluster("raw", ports: [rawServer.port]),
        ])
      func chain(_ name: String, _ configure: (inout FilterChainMatch) -> Void) throws -> FilterChain {
        var chain = FilterChain(
          name: name,
          terminal: try TcpProxyFilter(
            config: TcpProxyConfig(statPrefix: name, route: .cluster(name)), stats: seed.stats))
        configure(&chain.match)
        return chain
      }
      var listener = Listener(name: "sniff", address: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
      listener.listenerFilters = [ListenerFilter(.tlsInspector), ListenerFilter(.httpInspector)]
      listener.filterChains = [
        try chain("sni") { $0.serverNames = ["*.example.com"] },
        try chain("alpn") {
          $0.transportProtocol = "tls"
          $0.applicationProtocols = ["h2"]
        },
        // Transport protocol is matched before ALPN, so the HTTP chain names raw_buffer too (as Istio's do).
        try chain("http") {
          $0.transportProtocol = "raw_buffer"
          $0.applicationProtocols = ["http/1.1"]
        },
        try chain("raw") { $0.transportProtocol = "raw_buffer" },
      ]
      let core = try CoreHarness(listeners: [listener], clusters: [], sharing: seed)
      try await core.start()
      defer { Task { await core.stop() } }

      func roundTrip(_ bytes: [UInt8]) throws -> [UInt8] {
        let client = try LoopbackClient(port: core.port("sniff"))
        defer { client.close() }
        _ = client.send(bytes)
        client.finishWriting()
        return client.readAll()
      }
      let sniHello = TestClientHello.record(sni: "api.example.com", alpn: ["h2"])
      #expect(try roundTrip(sniHello) == sniHello)
      let alpnHello = TestClientHello.record(sni: "other.org", alpn: ["h2"])
      #expect(try roundTrip(alpnHello) == alpnHello)
      let request = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
      #expect(try roundTrip(request) == request)
      let raw = Array("\u{0}\u{1}binary protocol".utf8)
      #expect(try roundTrip(raw) == raw)
      #expect(sniServer.accepted.withLockedValue { $0 } == 1)
      #expect(alpnServer.accepted.withLockedValue { $0 } == 1)
      #expect(httpServer.accepted.withLockedValue { $0 } == 1)
      #expect(rawServer.accepted.withLockedValue { $0 } == 1)
    }
  }
}
