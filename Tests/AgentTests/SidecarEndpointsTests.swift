import Foundation
import TestSupport
import Testing

@testable import Agent

#if canImport(Glibc)
  import Glibc
#endif

/// A fake application (Helpers/fake_app.py) on a free port.
final class FakeApp: @unchecked Sendable {
  let process = Process()
  let port: Int
  let recordPath = NSTemporaryDirectory() + "pilotfish-app-" + UUID().uuidString

  init(script: String = "fake_app.py", arguments: [String] = [], environment: [String: String] = [:]) throws {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", Binaries.helper(script), "0"] + arguments
    var env = ProcessInfo.processInfo.environment
    env["FAKE_APP_RECORD"] = recordPath
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      line.append(chunk)
    }
    port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
  }

  var record: String { (try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? "" }

  /// SIGKILL: processes started from the test runner inherit its blocked signal mask, SIGTERM included.
  func stop() {
    killAndReap(process)
    try? FileManager.default.removeItem(atPath: recordPath)
  }
}

@Suite(.serialized) struct SidecarEndpointsTests {
  @Test func appProbesRunFromTheSidecarSourceAddress() async throws {
    let app = try FakeApp()
    defer { app.stop() }
    let closed = freePort()
    let probers = """
      {"/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": \(app.port), "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "timeoutSeconds": 2},
       "/app-health/web/readyz": {"httpGet": {"path": "unhealthy", "port": \(app.port)}},
       "/app-health/web/startupz": {"tcpSocket": {"port": \(app.port)}},
       "/app-health/db/readyz": {"tcpSocket": {"port": \(closed)}},
       "/app-health/db/livez": {"httpGet": {"path": "/healthz", "port": \(closed)}},
       "/app-lifecycle/web/prestopz": {"httpGet": {"path": "/redirect", "port": \(app.port)}}}
      """
    let sidecar = try SidecarUnderTest(environment: ["ISTIO_KUBE_APP_PROBERS": probers])
    defer { sidecar.cleanUp() }
    #expect(
      await eventually { await sidecar.status("/app-health/web/livez") != nil }, "stderr: \(sidecar.stderr)")
    let live = try await sidecar.get("/app-health/web/livez")
    #expect(live.status == 200 && live.text == "ok\n")
    let ready = try await sidecar.get("/app-health/web/readyz")
    #expect(ready.status == 500 && ready.text == "broken\n")
    #expect(await sidecar.status("/app-health/web/startupz") == 200)
    #expect(await sidecar.status("/app-health/db/readyz") == 500)
    #expect(await sidecar.status("/app-health/db/livez") == 500)
    #expect(await sidecar.status("/app-lifecycle/web/prestopz") == 200)
    let unknown = try await sidecar.get("/app-health/other/livez")
    #expect(
      unknown.status == 400 && unknown.text == "app prober config does not exists for /app-health/other/livez"
    )
    // Every HTTP probe left from 127.0.0.6.
    let lines = app.record.split(separator: "\n")
    #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("127.0.0.6 ") }, "\(app.record)")
  }

  @Test func grpcHealthAndHTTPSProbesAgainstRealServers() async throws {
    let grpc = try FakeApp(script: "grpc_health_server.py", arguments: ["ready=SERVING", "down=NOT_SERVING"])
    defer { grpc.stop() }
    let certificates = NSTemporaryDirectory() + "pf-probe-tls-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: certificates) }
    try await onThread {
      try OpenSSLPKI.sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem"
          + " -subj /CN=app -days 1 2>/dev/null", in: certificates)
    }
    let https = try FakeApp(environment: [
      "FAKE_APP_TLS_CERT": certificates + "/cert.pem", "FAKE_APP_TLS_KEY": certificates + "/key.pem",
    ])
    defer { https.stop() }
    let plain = try FakeApp()
    defer { plain.stop() }
    let closed = freePort()
    let probers = """
      {"/app-health/g/livez": {"grpc": {"port": \(grpc.port)}, "timeoutSeconds": 3},
       "/app-health/g/readyz": {"grpc": {"port": \(grpc.port), "service": "ready"}, "timeoutSeconds": 3},
       "/app-health/down/livez": {"grpc": {"port": \(grpc.port), "service": "down"}, "timeoutSeconds": 3},
       "/app-health/down/readyz": {"grpc": {"port": \(grpc.port), "service": "unknown"}, "timeoutSeconds": 3},
       "/app-health/down/startupz": {"grpc": {"port": \(closed)}},
       "/app-health/s/livez": {"httpGet": {"path": "/healthz", "port": \(https.port), "scheme": "HTTPS"}, "timeoutSeconds": 3},
       "/app-health/s/readyz": {"httpGet": {"path": "/unhealthy", "port": \(https.port), "scheme": "HTTPS"}, "timeoutSeconds": 3},
       "/app-health/s/startupz": {"httpGet": {"path": "/healthz", "port": \(plain.port), "scheme": "HTTPS"}, "timeoutSeconds": 3}}
      """
    let sidecar = try SidecarUnderTest(environment: ["ISTIO_KUBE_APP_PROBERS": probers])
    defer { sidecar.cleanUp() }
    #expect(
      await eventually { await sidecar.status("/app-health/g/livez") != nil }, "stderr: \(sidecar.stderr)")
    // gRPC: SERVING passes; NOT_SERVING, an unknown service (NOT_FOUND) and nothing listening fail.
    #expect(await sidecar.status("/app-health/g/livez") == 200)
    #expect(await sidecar.status("/app-health/g/readyz") == 200)
    let down = try await sidecar.get("/app-health/down/livez")
    #expect(down.status == 500 && down.text.contains("NOT_SERVING"), "\(down.text)")
    let unknown = try await sidecar.get("/app-health/down/readyz")
    #expect(unknown.status == 500 && unknown.text.contains("gRPC status 5"), "\(unknown.text)")
    #expect(await sidecar.status("/app-health/down/startupz") == 500)
    #expect(grpc.record.contains("/grpc.health.v1.Health/Check"), "\(grpc.record)")
    // HTTPS: a self-signed certificate is accepted (as Istio's prober); the app's status passes through.
    let live = try await sidecar.get("/app-health/s/livez")
    #expect(live.status == 200 && live.text == "ok\n", "\(live.status) \(live.text)")
    let ready = try await sidecar.get("/app-health/s/readyz")
    #expect(ready.status == 500 && ready.text == "broken\n")
    #expect(await sidecar.status("/app-health/s/startupz") == 500)
    #expect(https.record.split(separator: "\n").allSatisfy { $0.hasPrefix("127.0.0.6 ") }, "\(https.record)")
  }

  @Test func mergedMetricsPassPromtoolAndCountFailures() async throws {
    let app = try FakeApp()
    defer { app.stop() }
    let closed = freePort()
    let annotations =
      #"{"scrape": "true", "targets": [{"port": "\#(app.port)", "path": "/metrics"}, {"port": "\#(closed)", "path": "/metrics"}]}"#
    let sidecar = try SidecarUnderTest(environment: ["ISTIO_PROMETHEUS_ANNOTATIONS": annotations])
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")

    for port in [sidecar.metricsPort, sidecar.statusPort] {
      let response = try await sidecar.get("/stats/prometheus", port: port, headers: [("Accept", "*/*")])
      #expect(response.status == 200)
      #expect(response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
      let body = response.text
      #expect(body.contains("istio_agent_scrapes_total "))
      #expect(body.contains(#"istio_agent_scrape_failures_total{type="application"} "#))
      #expect(
        !body.contains(#"istio_agent_scrape_failures_total{type="application"} 0"#), "closed port counted")
      #expect(body.contains("envoy_server_live{} 1"))
      #expect(body.contains(#"app_requests_total{code="200"} 42"#))
      // The app's duplicate of the proxy's family is dropped; every TYPE line appears once.
      #expect(!body.contains("envoy_server_live 5"))
      let types = body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
      #expect(Set(types).count == types.count)
      let check = try await onThread {
        try Binaries.run("/usr/bin/promtool", ["check", "metrics"], stdin: body)
      }
      // promtool exits 0, or 3 for lint-only findings (naming advice); 1 means the exposition does not parse.
      #expect(check.status == 0 || check.status == 3, "\(check.output)\n\(body)")
      #expect(!check.output.contains("error while linting"), "\(check.output)")
    }
    // The app got the Accept header filtered for applications.
    #expect(app.record.contains("/metrics text/plain;version=0.0.4"), "\(app.record)")
  }

  /// `X-Prometheus-Scrape-Timeout-Seconds` is untrusted: `inf` and `1e300` used to trap converting to Int64.
  @Test func hostileScrapeTimeoutHeadersAreIgnoredOrClamped() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    for value in ["inf", "1e300", "NaN", "-1", "-inf", "abc"] {
      for port in [sidecar.metricsPort, sidecar.statusPort] {
        let response = try await sidecar.get(
          "/stats/prometheus", port: port, headers: [("X-Prometheus-Scrape-Timeout-Seconds", value)])
        #expect(response.status == 200, "\(value) on \(port)")
        #expect(response.text.contains("istio_agent_scrapes_total "), "\(value) on \(port)")
      }
    }
    #expect(sidecar.process.isRunning, "stderr: \(sidecar.stderr)")
    #expect(await sidecar.status("/healthz/ready") == 200)
  }

  /// A client that sends part of a request head and stops is closed at the 10 s head deadline (it used to
  /// hold the connection for ever); the status port keeps answering meanwhile.
  @Test func slowlorisHeadIsClosedAtTheDeadline() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let port = sidecar.statusPort
    async let closedAfter: Duration? = onThread { () -> Duration? in
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      guard fd >= 0 else { return nil }
      defer { close(fd) }
      var timeout = timeval(tv_sec: 30, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      guard onLoopback(fd, port: port, { connect($0, $1, $2) }) == 0 else { return nil }
      let partial = Array("GET /healthz/ready HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
      _ = partial.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
      let start = ContinuousClock.now
      var buffer = [UInt8](repeating: 0, count: 256)
      while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n == 0 { return ContinuousClock.now - start }
        if n < 0 { return errno == EINTR ? nil : ContinuousClock.now - start }
      }
    }
    for _ in 0..<3 {
      #expect(await sidecar.status("/healthz/ready") == 200)
      try await Task.sleep(for: .seconds(1))
    }
    let waited = try #require(try await closedAfter)
    #expect(waited > .seconds(8) && waited < .seconds(15), "closed after \(waited)")
    #expect(sidecar.process.isRunning)
  }

  @Test func scrapeTimeoutHeaderParsing() {
    let fallback = Duration.seconds(5)
    #expect(MetricsEndpoint.scrapeTimeout(header: "inf", default: fallback) == fallback)
    #expect(MetricsEndpoint.scrapeTimeout(header: "NaN", default: fallback) == fallback)
    #expect(MetricsEndpoint.scrapeTimeout(header: "-1", default: fallback) == fallback)
    #expect(MetricsEndpoint.scrapeTimeout(header: "0", default: fallback) == fallback)
    #expect(MetricsEndpoint.scrapeTimeout(header: "1e300", default: fallback) == .seconds(60))
    #expect(MetricsEndpoint.scrapeTimeout(header: "60.5", default: fallback) == .seconds(60))
    #expect(MetricsEndpoint.scrapeTimeout(header: "9.5", default: fallback) == .milliseconds(9500))
  }

  @Test func openMetricsFromTheAppYieldsOneEOF() async throws {
    let app = try FakeApp()
    defer { app.stop() }
    let sidecar = try SidecarUnderTest(environment: [
      "ISTIO_PROMETHEUS_ANNOTATIONS": #"{"scrape": "true", "port": "\#(app.port)", "path": "/om"}"#
    ])
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let response = try await sidecar.get(
      "/stats/prometheus", port: sidecar.metricsPort,
      headers: [("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3")]
    )
    #expect(response.header("content-type") == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    let body = response.text
    #expect(body.hasSuffix("app_jobs_total 3\n# EOF\n"), "\(body)")
    #expect(body.components(separatedBy: "# EOF").count == 2)
    #expect(body.contains("# TYPE istio_agent_scrapes counter\nistio_agent_scrapes_total "))
    #expect(
      app.record.contains(
        "/om application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"))
  }

  @Test func aRealPrometheusScrapesTheMergedEndpoint() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let dir = sidecar.root.path + "/prometheus"
    try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
    try """
    global:
      scrape_interval: 1s
      scrape_timeout: 900ms
    scrape_configs:
      - job_name: sidecar
        metrics_path: /stats/prometheus
        static_configs:
          - targets: ["127.0.0.1:\(sidecar.metricsPort)"]
    """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
    let webPort = freePort()
    let prometheus = Process()
    prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
    prometheus.arguments = [
      "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
      "--web.listen-address=127.0.0.1:\(webPort)",
    ]
    prometheus.standardOutput = FileHandle.nullDevice
    let log = dir + "/prometheus.log"
    FileManager.default.createFile(atPath: log, contents: nil)
    prometheus.standardError = FileHandle(forWritingAtPath: log)
    try prometheus.run()
    defer {
      killAndReap(prometheus)
    }
    let client = LocalHTTPClient()
    var last = ""
    let up = await eventually(timeout: .seconds(60)) {
      guard
        let response = try? await client.request(
          host: "127.0.0.1", port: webPort, path: "/api/v1/query?query=up", timeout: .seconds(2))
      else { return false }
      last = response.text
      return response.text.contains(#""job":"sidecar""#) && response.text.contains(#""1"]"#)
    }
    #expect(
      up, "last answer: \(last)\nprometheus log: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
    )
    // And the proxy's and agent's series made it in.
    let series = try await client.request(
      host: "127.0.0.1", port: webPort, path: "/api/v1/query?query=istio_agent_scrapes_total",
      timeout: .seconds(5))
    #expect(series.text.contains("istio_agent_scrapes_total"))
  }

  @Test func pilotfishWaitSucceedsOnceReadyAndTimesOutOtherwise() async throws {
    let sidecar = try SidecarUnderTest(environment: ["FAKE_PROXY_READY_AFTER": "1.0"])
    defer { sidecar.cleanUp() }
    let pilotfish = try Binaries.pilotfish()
    let ok = try await onThread {
      try Binaries.run(
        pilotfish,
        [
          "wait", "--url", "http://localhost:\(sidecar.statusPort)/healthz/ready", "--timeoutSeconds", "20",
          "--periodMillis", "50", "--requestTimeoutMillis", "500",
        ])
    }
    #expect(ok.status == 0, "\(ok.output)")
    #expect(await sidecar.status("/healthz/ready") == 200)

    let closed = freePort()
    let timedOut = try await onThread {
      try Binaries.run(
        pilotfish,
        [
          "wait", "--url", "http://127.0.0.1:\(closed)/healthz/ready", "--timeoutSeconds", "1",
          "--periodMillis", "100",
        ])
    }
    #expect(timedOut.status == 1)
    #expect(
      timedOut.output.contains("timeout waiting for Envoy proxy to become ready. Last error:"),
      "\(timedOut.output)")
  }

  @Test func pilotfishRequestPrintsTheBodyAndFailsOnErrors() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    var env = ProcessInfo.processInfo.environment
    env["PILOTFISH_REQUEST_ANY_PORT"] = "true"
    let pilotfish = try Binaries.pilotfish()
    let stats = try await onThread {
      try Binaries.run(
        pilotfish,
        [
          "request", "GET", "stats?usedonly&filter=^server\\.state", "--debug-port",
          String(sidecar.adminPort),
        ],
        environment: env)
    }
    #expect(stats.status == 0, "\(stats.output)")
    #expect(stats.output.contains("server.state: 0"), "\(stats.output)")
    let refused = try await onThread {
      try Binaries.run(
        pilotfish, ["request", "GET", "quitquitquit", "--debug-port=\(sidecar.statusPort)"], environment: env)
    }
    #expect(refused.status == 1)
    #expect(refused.output.contains("HTTP status code 405"), "\(refused.output)")
    let badPort = try await onThread {
      try Binaries.run(pilotfish, ["request", "GET", "stats", "--debug-port", "1234"])
    }
    #expect(badPort.status != 0)
    #expect(badPort.output.contains("--debug-port"))
  }
}
