import Foundation
import TestSupport
import Testing

@testable import Agent

#if canImport(Glibc)
  import Glibc
#endif

/// `pilotfish proxy sidecar` as a real process supervising the fake proxy: start, readiness, restarts,
/// the termination sequences.
@Suite(.serialized) struct SidecarLifecycleTests {
  @Test func startsTheProxyWithPilotAgentsArgumentsAndBecomesReady() async throws {
    let readyFile = NSTemporaryDirectory() + "pilotfish-ready-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: readyFile) }
    let sidecar = try SidecarUnderTest(environment: ["FAKE_PROXY_READY_FILE": readyFile])
    defer { sidecar.cleanUp() }

    // 503 while the proxy initialises, then 200 once it reports LIVE.
    #expect(await eventually { await sidecar.status("/healthz/ready") == 503 }, "stderr: \(sidecar.stderr)")
    // Readiness is evaluated per /healthz/ready request: keep asking until the proxy's admin is queried.
    #expect(
      await eventually {
        _ = await sidecar.status("/healthz/ready")
        return sidecar.record.contains { $0.hasPrefix("admin GET /stats") }
      })
    #expect(await sidecar.status("/healthz/ready") == 503)
    FileManager.default.createFile(atPath: readyFile, contents: nil)
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")

    let start = try #require(sidecar.record.first { $0.hasPrefix("start ") })
    let args = try JSONSerialization.jsonObject(
      with: Data(start.split(separator: "args=", maxSplits: 1)[1].utf8))
    #expect(
      args as? [String] == [
        "-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45", "--drain-strategy", "immediate",
        "--local-address-ip-version", "v4", "--file-flush-interval-msec", "1000", "--disable-hot-restart",
        "--allow-unknown-static-fields", "-l", "warning", "--component-log-level", "misc:error",
        "--skip-deprecated-logs",
      ])
    if geteuid() == 0 { #expect(start.contains("uid=1337 gid=1337")) }
    // The bootstrap is where the arguments say, for the pod in the environment, with no control plane.
    let bootstrap = try String(
      contentsOfFile: sidecar.root.path + "/etc/istio/proxy/envoy-rev.json", encoding: .utf8)
    #expect(bootstrap.contains("sidecar~127.0.0.1~web-0.shop~shop.svc.cluster.local"))
    #expect(!bootstrap.contains("dynamicResources") && !bootstrap.contains("dynamic_resources"))
    // The proxy's output is forwarded.
    #expect(
      await eventually {
        sidecar.stdout.contains("fake proxy started") && sidecar.stderr.contains("fake proxy stderr line")
      })
  }

  @Test func sigtermDrainsInboundListenersThenStopsTheProxyAndExitsZero() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    sidecar.signal(SIGTERM)
    // Not ready while terminating.
    #expect(await eventually { await sidecar.status("/healthz/ready") == 503 })
    #expect(await sidecar.waitForExit() == 0, "stderr: \(sidecar.stderr)")
    let record = sidecar.record
    let drain = try #require(record.firstIndex(of: "admin POST /drain_listeners?inboundonly&graceful"))
    let term = try #require(record.firstIndex(of: "sigterm"))
    #expect(drain < term)
  }

  @Test func exitOnZeroActiveConnectionsPollsUntilNoneAreLeft() async throws {
    let sidecar = try SidecarUnderTest(environment: [
      "EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true", "MINIMUM_DRAIN_DURATION": "100ms",
      "FAKE_PROXY_ACTIVE_CONNECTIONS": "3",
    ])
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    sidecar.signal(SIGTERM)
    #expect(await sidecar.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(sidecar.stderr)")
    let record = sidecar.record
    let polls = record.filter { $0 == "admin GET /stats?usedonly&filter=downstream_cx_active$" }
    // 3 connections, one closing per poll: polls see 2, 1, 0.
    #expect(polls.count == 3, "\(record)")
    let lastPoll = try #require(
      record.lastIndex(of: "admin GET /stats?usedonly&filter=downstream_cx_active$"))
    let term = try #require(record.firstIndex(of: "sigterm"))
    #expect(lastPoll < term)
  }

  @Test func aProxyThatIgnoresSigtermIsKilledAfterTheGrace() async throws {
    let sidecar = try SidecarUnderTest(
      environment: ["FAKE_PROXY_IGNORE_SIGTERM": "1"], arguments: ["--stop-grace-ms", "1500"],
      proxyConfig: nil)
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    sidecar.signal(SIGTERM)
    #expect(await sidecar.waitForExit() == 0, "stderr: \(sidecar.stderr)")
    #expect(sidecar.record.contains("sigterm"))
    #expect(sidecar.stderr.contains("sent SIGKILL"))
  }

  @Test func quitquitquitStopsWithoutDrainAndExitsZero() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    #expect(try await sidecar.get("/quitquitquit").status == 405)
    let reply = try await sidecar.get("/quitquitquit", method: "POST")
    #expect(reply.status == 200 && reply.text == "OK")
    #expect(await sidecar.waitForExit() == 0, "stderr: \(sidecar.stderr)")
    #expect(!sidecar.record.contains { $0.contains("drain_listeners") })
    #expect(sidecar.record.contains("sigterm"))
  }

  @Test func drainViaPilotfishRequestDrainsWithoutExitingThenSigtermStopsAtOnce() async throws {
    let sidecar = try SidecarUnderTest()
    defer { sidecar.cleanUp() }
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    // The injector's preStop hook, exactly (but on the test's status port).
    var env = ProcessInfo.processInfo.environment
    env["PILOTFISH_REQUEST_ANY_PORT"] = "true"
    let result = try await onThread {
      try Binaries.run(
        try Binaries.pilotfish(), ["request", "--debug-port=\(sidecar.statusPort)", "POST", "drain"],
        environment: env)
    }
    #expect(result.status == 0, "\(result.output)")
    #expect(result.output == "OK\n")
    #expect(
      await eventually {
        sidecar.record.contains("admin POST /drain_listeners?inboundonly&graceful&skip_exit")
      })
    sidecar.signal(SIGTERM)
    #expect(await sidecar.waitForExit() == 0, "stderr: \(sidecar.stderr)")
    #expect(sidecar.record.filter { $0.contains("drain_listeners") }.count == 1)
  }

  @Test func aCrashedProxyIsRestartedAfterABackoffAndCounted() async throws {
    let marker = NSTemporaryDirectory() + "pilotfish-crash-once-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: marker) }
    let sidecar = try SidecarUnderTest(environment: [
      "FAKE_PROXY_CRASH_AFTER": "0.5", "FAKE_PROXY_CRASH_ONCE": marker, "FAKE_PROXY_READY_AFTER": "0",
    ])
    defer { sidecar.cleanUp() }
    #expect(await eventually { sidecar.record.contains("crash") }, "stderr: \(sidecar.stderr)")
    #expect(await eventually { sidecar.record.filter { $0.hasPrefix("start ") }.count == 2 })
    #expect(await sidecar.waitUntilReady(), "stderr: \(sidecar.stderr)")
    let metrics = try await sidecar.get("/stats/prometheus", port: sidecar.metricsPort).text
    #expect(metrics.contains("istio_agent_proxy_restarts_total 1\n"), "\(metrics)")
    #expect(sidecar.stderr.contains("proxy exited unexpectedly (exit status 3); restarting in"))
  }

  @Test func theAgentGivesUpWhenTheRestartBudgetIsExhausted() async throws {
    let sidecar = try SidecarUnderTest(
      environment: ["FAKE_PROXY_CRASH_AFTER": "0.2"], arguments: ["--max-proxy-restarts", "2"])
    defer { sidecar.cleanUp() }
    let status = await sidecar.waitForExit(timeout: .seconds(30))
    #expect(status == 1, "stderr: \(sidecar.stderr)")
    #expect(sidecar.record.filter { $0.hasPrefix("start ") }.count == 3)
    #expect(sidecar.stderr.contains("restart budget of 2 exhausted"), "\(sidecar.stderr)")
  }
}

/// Bad input fails before anything starts, naming the culprit.
@Suite struct SidecarInputErrorTests {
  func run(environment: [String: String] = [:], arguments: [String] = [], proxyConfig: String? = nil)
    async throws
    -> (status: Int32?, stderr: String, started: Bool)
  {
    let sidecar = try SidecarUnderTest(
      environment: environment, arguments: arguments, proxyConfig: proxyConfig)
    defer { sidecar.cleanUp() }
    let status = await sidecar.waitForExit()
    return (status, sidecar.stderr, sidecar.record.contains { $0.hasPrefix("start ") })
  }

  @Test func malformedProxyConfig() async throws {
    let result = try await run(proxyConfig: "{not json")
    #expect(result.status == 1)
    #expect(
      result.stderr.contains("pilotfish proxy: error: PROXY_CONFIG: malformed ProxyConfig"),
      "\(result.stderr)")
    #expect(!result.started)
  }

  /// One bad number or duration per case, through every input of `pilotfish proxy sidecar`: the built agent
  /// exits with status 1 (`run` reports a signal as 128+n) and names the input. `3000000h` and `1e300s`
  /// overflowed Int64 nanoseconds (a trap) before the range check.
  struct OutOfRangeCase: CustomTestStringConvertible, Sendable {
    var environment: [String: String] = [:]
    var arguments: [String] = []
    var proxyConfig: String?
    var annotation: String?
    var message: String
    var testDescription: String { message }
  }

  static let outOfRangeCases: [OutOfRangeCase] = [
    .init(
      proxyConfig: #"{"drainDuration": "3000000h"}"#,
      message: #"PROXY_CONFIG: field drainDuration: invalid duration "3000000h""#),
    .init(
      proxyConfig: #"{"terminationDrainDuration": "1e300s"}"#,
      message: #"PROXY_CONFIG: field terminationDrainDuration: invalid duration "1e300s""#),
    .init(
      proxyConfig: #"{"drainDuration": "2562048h"}"#,
      message: #"PROXY_CONFIG: field drainDuration: invalid duration "2562048h""#),
    .init(
      proxyConfig: #"{"fileFlushInterval": "3000000h"}"#,
      message: #"ProxyConfig fileFlushInterval: invalid duration "3000000h""#),
    .init(proxyConfig: #"{"fileFlushMinSizeKb": 1e300}"#, message: "ProxyConfig fileFlushMinSizeKb"),
    .init(proxyConfig: #"{"concurrency": 1e300}"#, message: "PROXY_CONFIG: field concurrency"),
    .init(
      annotation: #"{"drainDuration": "9999999999h"}"#,
      message: #"annotation proxy.istio.io/config: field drainDuration: invalid duration "9999999999h""#),
    .init(
      environment: ["SECRET_TTL": "3000000h"], message: #"SECRET_TTL: invalid duration "3000000h""#),
    .init(environment: ["SECRET_TTL": "1e300s"], message: #"SECRET_TTL: invalid duration "1e300s""#),
    .init(
      environment: ["MINIMUM_DRAIN_DURATION": "1e300h"],
      message: #"MINIMUM_DRAIN_DURATION: invalid duration "1e300h""#),
    .init(
      environment: [
        "ISTIO_KUBE_APP_PROBERS":
          #"{"/app-health/web/livez": {"httpGet": {"port": 8080, "path": "/"}, "timeoutSeconds": "9223372036854775807"}}"#
      ], message: "field timeoutSeconds: 9223372036854775807 is above 2147483647"),
    .init(arguments: ["--proxy-uid", "99999999999"], message: "--proxy-uid: 99999999999 is not an id"),
    .init(arguments: ["--proxy-gid", "4294967296"], message: "--proxy-gid: 4294967296 is not an id"),
  ]

  @Test(arguments: outOfRangeCases) func outOfRangeNumbersExitOneNamingTheInput(_ c: OutOfRangeCase)
    async throws
  {
    var arguments = c.arguments
    let pod = try TempRoot()
    defer { pod.remove() }
    if let annotation = c.annotation {
      let document: [String: Any] = [
        "apiVersion": "v1", "kind": "Pod",
        "metadata": [
          "name": "web-0", "namespace": "shop", "annotations": ["proxy.istio.io/config": annotation],
        ],
        "spec": ["containers": [["name": "web", "image": "nginx"]]],
        "status": ["podIP": "127.0.0.1"],
      ]
      try pod.write("pod.json", String(decoding: try JSONSerialization.data(withJSONObject: document), as: UTF8.self))
      arguments += ["--pod-metadata", pod.path + "/pod.json"]
    }
    var proxyConfig: String?
    if let extra = c.proxyConfig {
      proxyConfig = #"{"discoveryAddress": "", "# + extra.dropFirst()
    }
    let result = try await run(environment: c.environment, arguments: arguments, proxyConfig: proxyConfig)
    #expect(result.status == 1, "\(result.stderr)")
    #expect(result.stderr.contains(c.message), "\(result.stderr)")
    #expect(!result.started)
  }

  @Test func malformedAppProbers() async throws {
    let result = try await run(environment: ["ISTIO_KUBE_APP_PROBERS": #"{"/app-health/web/livez": {"#])
    #expect(result.status == 1)
    #expect(result.stderr.contains("ISTIO_KUBE_APP_PROBERS: malformed JSON"), "\(result.stderr)")
    #expect(!result.started)
    let twoActions = try await run(environment: [
      "ISTIO_KUBE_APP_PROBERS":
        #"{"/app-health/web/livez": {"tcpSocket": {"port": 1}, "httpGet": {"port": 2}}}"#
    ])
    #expect(twoActions.stderr.contains("exactly one of httpGet, tcpSocket or grpc"), "\(twoActions.stderr)")
  }

  @Test func malformedPrometheusAnnotations() async throws {
    let result = try await run(environment: [
      "ISTIO_PROMETHEUS_ANNOTATIONS": #"{"scrape": "true", "port": "15000"}"#
    ])
    #expect(result.status == 1)
    #expect(
      result.stderr.contains("ISTIO_PROMETHEUS_ANNOTATIONS: field port: port 15000 is reserved"),
      "\(result.stderr)")
    #expect(!result.started)
  }

  @Test func portCollisionAndTakenPort() async throws {
    let port = freePort()
    let collision = try await run(arguments: ["--metrics-port", String(port), "--status-port", String(port)])
    #expect(collision.status == 1)
    #expect(
      collision.stderr.contains("port collision: statusPort and metrics port are both \(port)"),
      "\(collision.stderr)")

    // A port another process holds: the agent fails to listen before starting the proxy.
    let holder = try SidecarUnderTest(start: false)
    defer { holder.cleanUp() }
    let app = Process()
    app.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    app.arguments = [Binaries.helper("fake_app.py"), String(port)]
    let out = Pipe()
    app.standardOutput = out
    try app.run()
    defer {
      killAndReap(app)
    }
    _ = out.fileHandleForReading.availableData  // the port line: it is listening
    let taken = try await run(arguments: ["--status-port", String(port)])
    #expect(taken.status == 1)
    #expect(
      taken.stderr.contains("cannot listen on 127.0.0.1:\(port) for the status server"), "\(taken.stderr)")
    #expect(!taken.started)
  }

  @Test func templateFileIsRefusedWithTheSupportedAlternative() async throws {
    let result = try await run(arguments: ["--templateFile", "/etc/istio/custom.json"])
    #expect(result.status == 1)
    #expect(
      result.stderr.contains(
        "--templateFile /etc/istio/custom.json: custom Go bootstrap templates are not supported")
        && result.stderr.contains("ISTIO_BOOTSTRAP_OVERRIDE"), "\(result.stderr)")
    #expect(!result.started)
  }

  @Test func malformedBootstrapOverrideAndIdentitySettings() async throws {
    let missing = try await run(environment: ["ISTIO_BOOTSTRAP_OVERRIDE": "/nonexistent/override.yaml"])
    #expect(missing.status == 1)
    #expect(
      missing.stderr.contains("ISTIO_BOOTSTRAP_OVERRIDE /nonexistent/override.yaml: cannot read"),
      "\(missing.stderr)")
    let ttl = try await run(environment: ["SECRET_TTL": "soon"])
    #expect(ttl.status == 1 && ttl.stderr.contains("SECRET_TTL: invalid duration \"soon\""), "\(ttl.stderr)")
    let ratio = try await run(environment: ["SECRET_GRACE_PERIOD_RATIO": "2"])
    #expect(ratio.status == 1 && ratio.stderr.contains("SECRET_GRACE_PERIOD_RATIO"), "\(ratio.stderr)")
    #expect(!missing.started && !ttl.started && !ratio.started)
  }

  @Test func missingPodFileAndMissingBinary() async throws {
    let missing = try await run(arguments: ["--pod-metadata", "/nonexistent/pod.json"])
    #expect(missing.status == 1)
    #expect(
      missing.stderr.contains("/nonexistent/pod.json: pod metadata file not found"), "\(missing.stderr)")
    let binary = try await run(arguments: ["--binary-path", "/nonexistent/envoy"])
    #expect(
      binary.stderr.contains("/nonexistent/envoy: proxy binary (--binary-path) not found"), "\(binary.stderr)"
    )
  }
}
