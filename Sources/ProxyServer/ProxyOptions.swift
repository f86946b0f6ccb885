/// The proxy's command-line options, in Envoy's terms (see Envoy's `CommandLineOptions`). The CLI target
/// parses them; everything here is plain values so tests can build them directly.
package struct ProxyOptions: Sendable, Equatable {
  package enum Mode: String, Sendable, CaseIterable {
    case serve
    case validate
    case initOnly = "init_only"
  }

  package enum DrainStrategy: String, Sendable, CaseIterable {
    case gradual, immediate
  }

  package enum IPVersion: String, Sendable, CaseIterable {
    case v4, v6
  }

  /// Envoy's log levels; `warn` is accepted as `warning`.
  package enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, warning, warn, error, critical, off
  }

  package var configPath: String?
  package var configYAML: String?
  package var mode: Mode = .serve
  package var allowUnknownStaticFields = false
  package var rejectUnknownDynamicFields = false
  package var ignoreUnknownDynamicFields = false
  package var drainTimeSeconds: UInt64 = 600
  package var drainStrategy: DrainStrategy = .gradual
  package var parentShutdownTimeSeconds: UInt64 = 900
  package var restartEpoch: UInt32 = 0
  package var disableHotRestart = false
  package var localAddressIPVersion: IPVersion = .v4
  package var fileFlushIntervalMilliseconds: UInt64 = 10_000
  package var fileFlushMinSizeKB: UInt64?
  /// Worker event loops; nil = one per CPU; 0 is treated as 1.
  package var concurrency: UInt32?
  package var logLevel: LogLevel = .info
  /// `--component-log-level upstream:debug,connection:trace`, in order.
  package var componentLogLevels: [(component: String, level: LogLevel)] = []
  package var logFormat: String?
  package var logFormatEscaped = false
  package var logPath: String?
  package var serviceCluster: String?
  package var serviceNode: String?
  package var serviceZone: String?
  package var baseID: UInt32 = 0
  package var useDynamicBaseID = false
  package var baseIDPath: String?
  package var skipHotRestartOnNoParent = false
  package var enableCoreDump = false
  /// `--admin-address-path`: where to write the admin listener's bound address (`127.0.0.1:15000`).
  package var adminAddressPath: String?

  package init() {}

  package static func == (lhs: ProxyOptions, rhs: ProxyOptions) -> Bool {
    lhs.configPath == rhs.configPath && lhs.configYAML == rhs.configYAML && lhs.mode == rhs.mode
      && lhs.allowUnknownStaticFields == rhs.allowUnknownStaticFields
      && lhs.drainTimeSeconds == rhs.drainTimeSeconds && lhs.drainStrategy == rhs.drainStrategy
      && lhs.concurrency == rhs.concurrency && lhs.logLevel == rhs.logLevel
      && lhs.componentLogLevels.map(\.component) == rhs.componentLogLevels.map(\.component)
      && lhs.componentLogLevels.map(\.level) == rhs.componentLogLevels.map(\.level)
      && lhs.serviceCluster == rhs.serviceCluster && lhs.serviceNode == rhs.serviceNode
      && lhs.serviceZone == rhs.serviceZone && lhs.localAddressIPVersion == rhs.localAddressIPVersion
  }

  /// Parses `--component-log-level`: a comma-separated list of `component:level`.
  package static func parseComponentLogLevels(
    _ text: String
  ) throws(ProxyOptionsError) -> [(component: String, level: LogLevel)] {
    var result: [(component: String, level: LogLevel)] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
      let parts = item.split(separator: ":", omittingEmptySubsequences: false)
      guard parts.count == 2, !parts[0].isEmpty else {
        throw ProxyOptionsError(flag: "--component-log-level", message: "'\(item)' is not component:level")
      }
      guard let level = LogLevel(rawValue: String(parts[1])) else {
        throw ProxyOptionsError(
          flag: "--component-log-level",
          message: "unknown log level '\(parts[1])' for component '\(parts[0])'")
      }
      result.append((String(parts[0]), level))
    }
    return result
  }
}

/// A command-line value that parses but is not acceptable; names the flag.
package struct ProxyOptionsError: Error, Equatable, Sendable, CustomStringConvertible {
  package var flag: String
  package var message: String
  package init(flag: String, message: String) {
    self.flag = flag
    self.message = message
  }

  package var description: String { "\(flag): \(message)" }
}
