import Foundation
import TestSupport
import Testing

@testable import ProxyServer

/// `pilotfish-proxy --mode serve` as pilot-agent runs it: the admin API answers in Envoy's formats, a
/// tcp_proxy listener carries traffic, and the process stops cleanly on /quitquitquit and SIGTERM.
@Suite("pilotfish-proxy serve and admin API", .serialized)
struct ProxyServeTests {
  /// A running proxy with its admin address known (via --admin-address-path).
  final class RunningProxy {
    let process = Process()
    let admin: String
    let stderr = Pipe()

    /// `ulimit`: shell `ulimit` arguments applied before the proxy is exec'd (same pid), e.g. `["-Sn", "100"]`.
    init(bootstrap: String, extra: [String] = [], ulimit: [String]? = nil) throws {
      let config = try ProxyCommandLineTests.write(bootstrap, as: "bootstrap.yaml")
      let addressFile = URL(fileURLWithPath: config).deletingLastPathComponent().appendingPathComponent(
        "admin"
      ).path
      let arguments = ["-c", config, "--admin-address-path", addressFile, "--concurrency", "1"] + extra
      if let ulimit {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
          [
            "-c", "ulimit \(ulimit.joined(separator: " ")) && exec \"$0\" \"$@\"",
            try ProxyCommandLineTests.binary().path,
          ]
          + arguments
      } else {
        process.executableURL = try ProxyCommandLineTests.binary()
        process.arguments = arguments
      }
      process.standardError = stderr
      process.standardOutput = FileHandle.nullDevice
      try process.run()
      var address: String?
      for _ in 0..<400 {
        if let text = try? String(contentsOfFile: addressFile, encoding: .utf8), text.hasSuffix("\n") {
          address = text.trimmingCharacters(in: .whitespacesAndNewlines)
          break
        }
        if !process.isRunning { break }
        usleep(25_000)
      }
      guard let address else {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        throw ProxyFailed(
          log: String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
      }
      admin = "http://\(address)"
    }

    struct ProxyFailed: Error, CustomStringConvertible {
      var log: String
      var description: String { "proxy did not start: \(log)" }
    }

    /// (status, body) of an admin request made with curl.
    func request(_ path: String, method: String = "GET") throws -> (Int, String) {
      let result = try ProxyCommandLineTests.runTool(
        "/usr/bin/curl", ["-s", "-X", method, "-w", "\n%{http_code}", admin + path])
      let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
      var body = lines.dropLast().joined(separator: "\n")
      if body.hasSuffix("\n") { body.removeLast() }
      return (Int(lines.last ?? "") ?? 0, body)
    }

    func waitUntilLive() -> Bool {
      for _ in 0..<200 {
        if (try? request("/ready"))?.1 == "LIVE" { return true }
        usleep(25_000)
      }
      return false
    }

    func stop() {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      _ = ChildProcess.reap(process, timeout: .seconds(10))
    }

    /// User + system CPU time the proxy has used, from /proc.
    func cpuTime() -> Duration? {
      guard
        let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
      else { return nil }
      let fields = text[text.index(after: close)...].split(separator: " ")
      // After the command: state is field 3 of stat, utime and stime are fields 14 and 15.
      guard fields.count > 13, let user = Int64(fields[11]), let system = Int64(fields[12]) else {
        return nil
      }
      let ticks = Int64(sysconf(Int32(_SC_CLK_TCK)))
      return .milliseconds((user + system) * 1000 / max(ticks, 1))
    }

    /// The soft and hard open-files limits of the running proxy, from /proc.
    func openFilesLimits() -> (soft: String, hard: String)? {
      guard
        let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
      else { return nil }
      let parts = line.dropFirst("Max open files".count).split(separator: " ")
      guard parts.count >= 2 else { return nil }
      return (String(parts[0]), String(parts[1]))
    }

    deinit { stop() }
  }

  static func bootstrap(upstreamPort: Int) -> String {
    """
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    stats_config:
      use_all_default_tags: false
      stats_tags:
      - {tag_name: cluster_name, regex: '^cluster\\.((.+?)\\.)'}
      - {tag_name: tcp_prefix, regex: '^tcp\\.((.*?)\\.)\\w+?$'}
    static_resources:
      listeners:
      - name: echo_in
        address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        traffic_direction: INBOUND
        filter_chains:
        - filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: echo
              cluster: echo
      clusters:
      - name: echo
        connect_timeout: 1s
        load_assignment:
          cluster_name: echo
          endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: \(upstreamPort)}}}}]}]
    """
  }

  @Test func adminAnswersLikeEnvoyAndTrafficFlows() throws {
    let upstream = try LoopbackServer(.echo)
    let proxy = try RunningProxy(bootstrap: Self.bootstrap(upstreamPort: upstream.port))
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())

    // /listeners gives the bound port; traffic goes through.
    let (_, listeners) = try proxy.request("/listeners")
    #expect(listeners.hasPrefix("echo_in::127.0.0.1:"))
    let port = Int(listeners.split(separator: ":").last!.trimmingCharacters(in: .whitespacesAndNewlines))!
    let client = try LoopbackClient(port: port)
    #expect(client.send("hello"))
    client.finishWriting()
    #expect(client.readAll() == Array("hello".utf8))
    client.close()

    // pilot-agent's readiness query, parsed the way pilot-agent parses it.
    let (status, text) = try proxy.request(
      "/stats?usedonly&filter=%5E%28server%5C.state%7Clistener_manager%5C.workers_started%29")
    #expect(status == 200)
    var values: [String: String] = [:]
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1)
      values[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
    }
    #expect(values == ["server.state": "0", "listener_manager.workers_started": "1"])

    // Per-host and per-cluster state.
    let (_, clusters) = try proxy.request("/clusters")
    #expect(clusters.contains("echo::127.0.0.1:\(upstream.port)::cx_total::1"))
    #expect(clusters.contains("echo::default_priority::max_connections::1024"))
    let (_, clustersJSON) = try proxy.request("/clusters?format=json")
    let parsedClusters = try JSONSerialization.jsonObject(with: Data(clustersJSON.utf8)) as? [String: Any]
    #expect((parsedClusters?["cluster_statuses"] as? [[String: Any]])?.first?["name"] as? String == "echo")

    // Prometheus with the configured tag extraction, accepted by promtool when it is installed.
    let (_, prometheus) = try proxy.request("/stats/prometheus")
    #expect(prometheus.contains("envoy_cluster_upstream_cx_total{cluster_name=\"echo\"} 1"), "\(prometheus)")
    #expect(prometheus.contains("# TYPE envoy_server_state gauge"))
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
      let file = try ProxyCommandLineTests.write(prometheus + "\n", as: "metrics.txt")
      let check = try ProxyCommandLineTests.runTool("/bin/sh", ["-c", "promtool check metrics < \(file)"])
      // 3 = lint findings only (no HELP lines, Envoy's counter names): Envoy's own output has them too.
      #expect(check.status == 0 || check.status == 3, "\(check.stdout)\(check.stderr)")
    }

    // JSON documents: /stats?format=json, /server_info, /config_dump.
    let (_, statsJSON) = try proxy.request("/stats?format=json&filter=server.state")
    let stats = try JSONSerialization.jsonObject(with: Data(statsJSON.utf8)) as? [String: Any]
    #expect(
      (stats?["stats"] as? [[String: Any]])?.contains { $0["name"] as? String == "server.state" } == true)
    let (_, info) = try proxy.request("/server_info")
    let serverInfo = try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any]
    #expect(serverInfo?["state"] as? String == "LIVE")
    let (_, dump) = try proxy.request("/config_dump")
    let configs =
      (try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])?["configs"]
      as? [[String: Any]]
    #expect(
      configs?.map { ($0["@type"] as? String ?? "").split(separator: ".").last.map(String.init) ?? "" } == [
        "BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump",
        "SecretsConfigDump",
      ])

    // Mutations need POST; logging levels change; a bad filter is a 400.
    #expect(try proxy.request("/quitquitquit").0 == 405)
    let (logStatus, logging) = try proxy.request("/logging?level=debug", method: "POST")
    #expect(logStatus == 200 && logging.contains("  upstream: debug"))
    #expect(try proxy.request("/stats?filter=%28").0 == 400)
    #expect(try proxy.request("/reset_counters", method: "POST").1 == "OK")
    #expect(
      try proxy.request("/stats?filter=%5Etcp%5C.echo%5C.downstream_cx_total").1
        == "tcp.echo.downstream_cx_total: 0")

    // /healthcheck/fail turns /ready to DRAINING (503); /healthcheck/ok back.
    _ = try proxy.request("/healthcheck/fail", method: "POST")
    #expect(try proxy.request("/ready") == (503, "DRAINING"))
    _ = try proxy.request("/healthcheck/ok", method: "POST")
    #expect(try proxy.request("/ready") == (200, "LIVE"))

    // /quitquitquit: OK, then a clean exit.
    #expect(try proxy.request("/quitquitquit", method: "POST").1 == "OK")
    // reap's own result: once it collected the child with waitpid, Process.terminationStatus would trap.
    #expect(ChildProcess.reap(proxy.process, timeout: .seconds(20)) == .exited(0))
  }

  @Test func configDumpSelectsTrimsAndFiltersResources() throws {
    let upstream = try LoopbackServer(.echo)
    let bootstrap =
      Self.bootstrap(upstreamPort: upstream.port) + "\n  - name: other\n    connect_timeout: 2s\n"
    let proxy = try RunningProxy(bootstrap: bootstrap)
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())
    func configs(_ query: String) throws -> [[String: Any]] {
      let (status, body) = try proxy.request("/config_dump?" + query)
      #expect(status == 200, "\(query): \(body)")
      let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
      return object?["configs"] as? [[String: Any]] ?? []
    }

    // resource + mask: one Any per static cluster, trimmed to the cluster name (inside the packed Any).
    let names = try configs("resource=static_clusters&mask=cluster.name")
    #expect(names.count == 2)
    #expect(
      names.allSatisfy {
        $0["@type"] as? String == "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"
      })
    #expect(names.compactMap { ($0["cluster"] as? [String: Any])?["name"] as? String } == ["echo", "other"])
    #expect(names.allSatisfy { $0["last_updated"] == nil && ($0["cluster"] as? [String: Any])?.count == 2 })

    // name_regex keeps the matching resources, with or without resource=.
    let other = try configs("resource=static_clusters&name_regex=%5Eoth")
    #expect(other.count == 1)
    #expect((other.first?["cluster"] as? [String: Any])?["connect_timeout"] as? String == "2s")
    let all = try configs("name_regex=echo")
    let clusters = all.first { ($0["@type"] as? String)?.hasSuffix(".ClustersConfigDump") == true }
    #expect((clusters?["static_clusters"] as? [Any])?.count == 1)

    // mask on the top-level dumps keeps @type and the named fields only.
    let masked = try configs("mask=static_listeners")
    #expect(masked.count == 5)
    #expect(masked.contains { ($0["static_listeners"] as? [Any])?.count == 1 })
    #expect(masked.allSatisfy { $0["static_clusters"] == nil && $0["bootstrap"] == nil })

    // Endpoints only with include_eds; unknown resources and fields are errors that say so.
    #expect(try configs("resource=static_endpoint_configs&include_eds").count == 1)
    let noEDS = try proxy.request("/config_dump?resource=static_endpoint_configs")
    #expect(noEDS.0 == 404 && noEDS.1.contains("include_eds"))
    let unknown = try proxy.request("/config_dump?resource=clusters")
    #expect(unknown.0 == 404 && unknown.1.contains("static_clusters"), "\(unknown.1)")
    let badMask = try proxy.request("/config_dump?resource=static_clusters&mask=clusterr.name")
    #expect(badMask.0 == 400 && badMask.1.contains("'clusterr' is not a field"), "\(badMask.1)")
    #expect(try proxy.request("/config_dump?name_regex=%28").0 == 400)
  }

  @Test func runtimeConnectionLimitRefusesTheExtraConnection() throws {
    let upstream = try LoopbackServer(.echo)
    let bootstrap =
      Self.bootstrap(upstreamPort: upstream.port)
      + "\nlayered_runtime:\n  layers:\n  - name: static\n    static_layer:\n"
      + "      envoy.resource_limits.listener.echo_in.connection_limit: 1\n"
    let proxy = try RunningProxy(bootstrap: bootstrap)
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())
    let port = Int(try proxy.request("/listeners").1.split(separator: ":").last!)!
    let first = try LoopbackClient(port: port)
    #expect(first.send("a"))
    var byte = [UInt8](repeating: 0, count: 1)
    #expect(read(first.fd, &byte, 1) == 1)
    let second = try LoopbackClient(port: port)
    #expect(second.readAll().isEmpty)
    second.close()
    first.close()
    #expect(
      try proxy.request("/stats?filter=downstream_cx_overflow").1
        == "listener.127.0.0.1_0.downstream_cx_overflow: 1")
  }

  @Test func sigtermExitsCleanly() throws {
    let upstream = try LoopbackServer(.echo)
    let proxy = try RunningProxy(bootstrap: Self.bootstrap(upstreamPort: upstream.port))
    #expect(proxy.waitUntilLive())
    kill(proxy.process.processIdentifier, SIGTERM)
    // reap's own result: once it collected the child with waitpid, Process.terminationStatus would trap.
    #expect(ChildProcess.reap(proxy.process, timeout: .seconds(20)) == .exited(0))
  }

  @Test func aListenerThatCannotBindFailsNamingIt() throws {
    let busy = try LoopbackServer(.echo)
    let config = Self.bootstrap(upstreamPort: busy.port).replacingOccurrences(
      of: "address: 127.0.0.1, port_value: 0}}\n    traffic_direction",
      with: "address: 127.0.0.1, port_value: \(busy.port)}}\n    traffic_direction")
    let path = try ProxyCommandLineTests.write(config, as: "busy.yaml")
    let result = try ProxyCommandLineTests.run(["-c", path, "--concurrency", "1"])
    #expect(result.status == 1)
    #expect(
      result.stderr.contains("listener 'echo_in': cannot bind to 127.0.0.1:\(busy.port)"), "\(result.stderr)")
  }

  @Test func validateReportsModelErrorsWithTheirPath() throws {
    let config = Self.bootstrap(upstreamPort: 1).replacingOccurrences(
      of: "connect_timeout: 1s", with: "type: ORIGINAL_DST")
    let (path, result) = try ProxyCommandLineTests.validate(config, as: "od.yaml")
    #expect(result.status == 1)
    #expect(
      result.stderr.contains(
        "\(path): static_resources.clusters[0].lb_policy: an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED, not roundRobin"
      ),
      "\(result.stderr)")
  }
}

@Suite struct CPUBudgetTests {
  @Test func cgroupQuotaLimitsWorkers() {
    #expect(CPUBudget.workerCount(cpuMax: "max 100000\n", cores: 8) == 8)
    #expect(CPUBudget.workerCount(cpuMax: "150000 100000\n", cores: 8) == 2)
    #expect(CPUBudget.workerCount(cpuMax: "50000 100000", cores: 8) == 1)
    #expect(CPUBudget.workerCount(cpuMax: "800000 100000", cores: 2) == 2)
    #expect(CPUBudget.workerCount(cpuMax: "garbage", cores: 4) == 4)
  }
}

@Suite struct IstioExtensionTypeTests {
  @Test func istioFilterTypesAreSkippedWithAWarning() throws {
    let config = """
      static_resources:
        listeners:
        - name: in
          address: {socket_address: {address: 127.0.0.1, port_value: 0}}
          filter_chains:
          - filters:
            - name: istio.stats
              typed_config: {"@type": type.googleapis.com/stats.PluginConfig, disable_host_header_fallback: true}
            - name: envoy.filters.network.tcp_proxy
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                stat_prefix: in
                cluster: c
        clusters:
        - name: c
      """
    let (path, result) = try ProxyCommandLineTests.validate(config, as: "istio.yaml")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == "configuration '\(path)' OK\n")
    #expect(
      result.stderr.contains(
        "static_resources.listeners[0].filter_chains[0].filters[0]: Istio filter stats.PluginConfig accepted and skipped"
      ),
      "\(result.stderr)")
  }
}
