import Foundation
import Testing

@testable import Agent

@Suite struct AdminStatsTests {
  @Test func readinessReasonsFollowPilotAgent() {
    let none = AdminStats.parse(
      "cluster_manager.cds.update_success: 0\nlistener_manager.lds.update_success: 0\n")
    #expect(
      AdminStats.configNotReceivedReason(none)?.hasPrefix(
        "config not received from XDS server (is Istiod running?)") == true)
    let rejected = AdminStats.parse(
      "cluster_manager.cds.update_rejected: 2\nlistener_manager.lds.update_success: 1\n")
    #expect(
      AdminStats.configNotReceivedReason(rejected)?.hasPrefix(
        "config received from XDS server, but was rejected") == true)
    let partial = AdminStats.parse("cluster_manager.cds.update_success: 1\n")
    #expect(AdminStats.configNotReceivedReason(partial)?.hasPrefix("config not fully received") == true)
    let ok = AdminStats.parse(
      "cluster_manager.cds.update_success: 3\nlistener_manager.lds.update_success: 1\n")
    #expect(AdminStats.configNotReceivedReason(ok) == nil)

    #expect(AdminStats.notLiveReason([:]) != nil)
    #expect(
      AdminStats.notLiveReason(["server.state": 3, "listener_manager.workers_started": 0])?.contains(
        "INITIALIZING") == true)
    #expect(
      AdminStats.notLiveReason(["server.state": 0, "listener_manager.workers_started": 0])
        == "workers have not yet started")
    #expect(AdminStats.notLiveReason(["server.state": 0, "listener_manager.workers_started": 1]) == nil)
  }

  /// Values from the admin socket that used to trap in `Int(_:)`: skipped as unparsable.
  @Test func hostileAdminValuesAreSkipped() {
    let stats = AdminStats.parse("server.state: inf\nlistener_manager.workers_started: nan\nx: 1e300\ny: 2\n")
    #expect(stats == ["y": 2])
    #expect(AdminStats.notLiveReason(stats) == "server.state is not yet reported")
    #expect(AdminStats.activeConnections("listener.10.0.0.1_80.downstream_cx_active: 1e300\n") == -1)
    #expect(
      AdminStats.configNotReceivedReason(AdminStats.parse("cluster_manager.cds.update_rejected: 1e300\n"))?
        .hasPrefix("config not received") == true)
  }

  @Test func activeConnectionsSkipWorkersAdminAndMetricsListeners() {
    let text = """
      listener.0.0.0.0_15006.downstream_cx_active: 2
      listener.0.0.0.0_15006.worker_0.downstream_cx_active: 2
      listener.10.0.0.1_8080.downstream_cx_active: 1
      listener.0.0.0.0_15090.downstream_cx_active: 4
      listener.0.0.0.0_15021.downstream_cx_active: 4
      listener.admin.downstream_cx_active: 1
      listener.envoy_internal_x.downstream_cx_active: 9
      http.inbound.downstream_cx_active: 5
      """
    #expect(AdminStats.activeConnections(text) == 3)
    #expect(AdminStats.activeConnections("") == -1)
  }
}

@Suite struct ProxyArgumentsTests {
  @Test func optionalFlagsInPilotAgentsOrder() {
    var line = ProxyCommandLine(configFile: "etc/istio/proxy/envoy-rev.json")
    line.proxyLogLevel = "info,upstream:debug,http:trace"
    line.proxyComponentLogLevel = "misc:error"
    line.fileFlushMinSizeKB = 64
    line.enableCoreDump = true
    line.configYAML = "{}"
    line.concurrency = 2
    line.ipv6 = true
    #expect(
      line.arguments == [
        "-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45", "--drain-strategy", "immediate",
        "--local-address-ip-version", "v6", "--file-flush-interval-msec", "1000", "--disable-hot-restart",
        "--allow-unknown-static-fields", "--file-flush-min-size-kb", "64", "-l", "info",
        "--component-log-level",
        "upstream:debug,http:trace", "--skip-deprecated-logs", "--enable-core-dump", "--config-yaml", "{}",
        "--concurrency", "2",
      ])
  }
}

@Suite struct PrometheusMergeTests {
  @Test func acceptIsFilteredPerSource() {
    let prometheus =
      "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    #expect(
      PrometheusMerge.filteredAccept(prometheus, allowOpenMetrics: false)
        == "text/plain;version=0.0.4;q=0.3,text/plain;version=0.0.4;q=0.2")
    #expect(
      PrometheusMerge.filteredAccept(prometheus, allowOpenMetrics: true).hasPrefix(
        "application/openmetrics-text;version=1.0.0;q=0.5"))
    #expect(
      PrometheusMerge.filteredAccept("application/*", allowOpenMetrics: true)
        == "application/openmetrics-text;version=0.0.1")
    #expect(
      PrometheusMerge.filteredAccept("application/json", allowOpenMetrics: true) == "text/plain;version=0.0.4"
    )
    #expect(PrometheusMerge.filteredAccept(nil, allowOpenMetrics: true) == "text/plain;version=0.0.4")
  }

  @Test func mergeDropsDuplicateFamiliesAndEOFs() {
    let a = "# TYPE x counter\nx 1\n"
    let b =
      "# HELP x dup\n# TYPE x counter\nx 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n# EOF\n"
    let c = "h_bucket{le=\"1\"} 9\ny 3\n# EOF"
    let merged = PrometheusMerge.merge([a, b, c], format: .openMetrics("1.0.0"))
    #expect(
      merged.text
        == "# TYPE x counter\nx 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\nh_bucket{le=\"1\"} 9\ny 3\n# EOF\n"
    )
    #expect(merged.duplicates == ["x"])
    #expect(!PrometheusMerge.merge([a], format: .text).text.contains("EOF"))
  }
}

@Suite struct SidecarConfigParsingTests {
  @Test func appProberValidation() throws {
    let probers = try AppProbers.parse(
      #"{"/app-health/a/livez": {"httpGet": {"path": "x", "port": 80}}, "/app-lifecycle/a/prestopz": {"tcpSocket": {"port": 81}}}"#
    )
    #expect(
      probers.probers["/app-health/a/livez"]?.action
        == .httpGet(path: "/x", port: 80, scheme: "HTTP", headers: []))
    #expect(throws: AgentError.self) {
      try AppProbers.parse(#"{"/app-health/a/other": {"tcpSocket": {"port": 1}}}"#)
    }
    #expect(throws: AgentError.self) {
      try AppProbers.parse(#"{"/app-health/a/livez": {"tcpSocket": {"port": "http"}}}"#)
    }
    #expect(try AppProbers.parse(nil).probers.isEmpty)
  }

  @Test func scrapeTargets() throws {
    #expect(try PrometheusScrapeTargets.parse(#"{"scrape": "false", "port": "8080"}"#, usedPorts: []) == nil)
    let one = try #require(try PrometheusScrapeTargets.parse(#"{"port": "8080"}"#, usedPorts: []))
    #expect(one.targets == [.init(port: 8080, path: "/metrics")])
    #expect(throws: AgentError.self) {
      try PrometheusScrapeTargets.parse(#"{"port": "15090"}"#, usedPorts: [])
    }
    #expect(throws: AgentError.self) {
      try PrometheusScrapeTargets.parse(#"{"port": "9000"}"#, usedPorts: [9000])
    }
  }
}
