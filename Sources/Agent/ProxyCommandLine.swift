/// The proxy's command line, argument for argument as pilot-agent builds Envoy's (`pkg/envoy/proxy.go`
/// `args`): the same flags in the same order, so a real Envoy can be supervised as well as `pilotfish-proxy`.
package struct ProxyCommandLine: Equatable, Sendable {
  package var configFile: String
  package var drainDuration: Duration = .seconds(45)
  /// `v6` only when every node IP is IPv6.
  package var ipv6: Bool = false
  package var fileFlushInterval: Duration = .seconds(1)
  package var fileFlushMinSizeKB: Int = 0
  /// pilot-agent's `--proxyLogLevel`: `level[,component:level...]`.
  package var proxyLogLevel: String = "warning"
  /// pilot-agent's `--proxyComponentLogLevel`.
  package var proxyComponentLogLevel: String = ""
  package var skipDeprecatedLogs: Bool = true
  package var enableCoreDump: Bool = false
  /// ISTIO_BOOTSTRAP_OVERRIDE converted to JSON, passed as `--config-yaml`.
  package var configYAML: String?
  package var concurrency: Int = 0

  package init(configFile: String) {
    self.configFile = configFile
  }

  package var arguments: [String] {
    var args = [
      "-c", configFile,
      "--drain-time-s", String(drainDuration.components.seconds),
      "--drain-strategy", "immediate",
      "--local-address-ip-version", ipv6 ? "v6" : "v4",
      "--file-flush-interval-msec", String(Self.milliseconds(fileFlushInterval)),
      "--disable-hot-restart",
      "--allow-unknown-static-fields",
    ]
    if fileFlushMinSizeKB > 0 { args += ["--file-flush-min-size-kb", String(fileFlushMinSizeKB)] }
    // `--proxyLogLevel=info,upstream:debug`: the first part is the level, the rest are component levels,
    // which win over --proxyComponentLogLevel.
    let parts = proxyLogLevel.split(separator: ",").map(String.init)
    let level = parts.first { !$0.contains(":") } ?? ""
    let components = parts.filter { $0.contains(":") }
    if !level.isEmpty { args += ["-l", level] }
    if !components.isEmpty {
      args += ["--component-log-level", components.joined(separator: ",")]
    } else if !proxyComponentLogLevel.isEmpty {
      args += ["--component-log-level", proxyComponentLogLevel]
    }
    if skipDeprecatedLogs { args.append("--skip-deprecated-logs") }
    if enableCoreDump { args.append("--enable-core-dump") }
    if let configYAML { args += ["--config-yaml", configYAML] }
    if concurrency > 0 { args += ["--concurrency", String(concurrency)] }
    return args
  }

  static func milliseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
  }
}
