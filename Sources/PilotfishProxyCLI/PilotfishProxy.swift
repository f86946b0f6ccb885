internal import ArgumentParser
internal import Foundation
internal import Logging
internal import ProxyServer

/// `pilotfish-proxy`: Envoy's command line (every flag pilot-agent passes, and the rest of Envoy's that a
/// sidecar might see), so the agent can run it in Envoy's place. An unknown flag would crash-loop the pod,
/// so flags without an effect yet are accepted and ignored.
@main
struct PilotfishProxy: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pilotfish-proxy",
    abstract: "The Pilotfish sidecar proxy (Envoy-compatible command line and bootstrap).")

  @Option(name: [.customShort("c"), .customLong("config-path")], help: "Bootstrap file (.json, .yaml, .pb).")
  var configPath: String?

  @Option(name: .customLong("config-yaml"), help: "YAML/JSON bootstrap merged over --config-path.")
  var configYAML: String?

  @Option(name: .customLong("mode"), help: "serve, validate or init_only.")
  var mode: ProxyOptions.Mode = .serve

  @Option(name: .customLong("drain-time-s"), help: "Drain period in seconds.")
  var drainTimeSeconds: UInt64 = 600

  @Option(name: .customLong("drain-strategy"), help: "gradual or immediate.")
  var drainStrategy: ProxyOptions.DrainStrategy = .gradual

  @Option(
    name: .customLong("parent-shutdown-time-s"), help: "Hot restart: seconds before the parent is stopped.")
  var parentShutdownTimeSeconds: UInt64 = 900

  @Option(name: .customLong("restart-epoch"), help: "Hot-restart generation.")
  var restartEpoch: UInt32 = 0

  @Flag(name: .customLong("disable-hot-restart"))
  var disableHotRestart = false

  @Flag(
    name: .customLong("allow-unknown-static-fields"),
    help: "Warn about unknown bootstrap fields instead of failing.")
  var allowUnknownStaticFields = false

  @Flag(name: .customLong("reject-unknown-dynamic-fields"))
  var rejectUnknownDynamicFields = false

  @Flag(name: .customLong("ignore-unknown-dynamic-fields"))
  var ignoreUnknownDynamicFields = false

  @Option(name: .customLong("local-address-ip-version"), help: "v4 or v6.")
  var localAddressIPVersion: ProxyOptions.IPVersion = .v4

  @Option(name: .customLong("file-flush-interval-msec"))
  var fileFlushIntervalMilliseconds: UInt64 = 10_000

  @Option(name: .customLong("file-flush-min-size-kb"))
  var fileFlushMinSizeKB: UInt64?

  @Option(name: .customLong("concurrency"), help: "Worker event loops (default: one per CPU).")
  var concurrency: UInt32?

  @Flag(name: .customLong("cpuset-threads"))
  var cpusetThreads = false

  @Option(
    name: [.customShort("l"), .customLong("log-level")],
    help: "trace, debug, info, warning, error, critical, off.")
  var logLevel: ProxyOptions.LogLevel = .info

  @Option(name: .customLong("component-log-level"), help: "Comma-separated component:level.")
  var componentLogLevel: String?

  @Option(name: .customLong("log-format"))
  var logFormat: String?

  @Flag(name: .customLong("log-format-escaped"))
  var logFormatEscaped = false

  @Option(name: .customLong("log-path"))
  var logPath: String?

  @Flag(name: .customLong("enable-fine-grain-logging"))
  var enableFineGrainLogging = false

  @Flag(name: .customLong("skip-deprecated-logs"))
  var skipDeprecatedLogs = false

  @Option(name: .customLong("service-cluster"))
  var serviceCluster: String?

  @Option(name: .customLong("service-node"))
  var serviceNode: String?

  @Option(name: .customLong("service-zone"))
  var serviceZone: String?

  @Option(name: .customLong("base-id"))
  var baseID: UInt32 = 0

  @Flag(name: .customLong("use-dynamic-base-id"))
  var useDynamicBaseID = false

  @Option(name: .customLong("base-id-path"))
  var baseIDPath: String?

  @Flag(name: .customLong("skip-hot-restart-on-no-parent"))
  var skipHotRestartOnNoParent = false

  @Flag(name: .customLong("skip-hot-restart-parent-stats"))
  var skipHotRestartParentStats = false

  @Flag(name: .customLong("enable-core-dump"))
  var enableCoreDump = false

  @Option(name: .customLong("admin-address-path"))
  var adminAddressPath: String?

  @Option(name: .customLong("disable-extensions"))
  var disableExtensions: String?

  @Option(name: .customLong("socket-path"))
  var socketPath: String?

  @Option(name: .customLong("socket-mode"))
  var socketMode: String?

  @Option(name: .customLong("stats-tag"), help: "name:value, repeatable.")
  var statsTags: [String] = []

  @Option(name: .customLong("bootstrap-version"))
  var bootstrapVersion: UInt32?

  @Flag(
    name: .customLong("hot-restart-version"), help: "Print the hot-restart compatibility version and exit.")
  var hotRestartVersion = false

  @Flag(name: .customLong("version"), help: "Print the version and exit.")
  var version = false

  /// Seconds that still fit in a 64-bit nanosecond count (about 292 years).
  static let maxSeconds: UInt64 = UInt64(Int64.max / 1_000_000_000 - 1)
  /// Worker threads: far above any machine this runs on, low enough that a typo fails clearly instead
  /// of exhausting threads.
  static let maxConcurrency: UInt32 = 1024

  mutating func validate() throws {
    for (flag, value) in [
      ("--drain-time-s", drainTimeSeconds), ("--parent-shutdown-time-s", parentShutdownTimeSeconds),
    ] where value > Self.maxSeconds {
      throw ValidationError("\(flag): \(value) seconds is out of range (at most \(Self.maxSeconds))")
    }
    if fileFlushIntervalMilliseconds > Self.maxSeconds * 1000 {
      throw ValidationError(
        "--file-flush-interval-msec: \(fileFlushIntervalMilliseconds) is out of range (at most \(Self.maxSeconds * 1000))"
      )
    }
    if let concurrency, concurrency > Self.maxConcurrency {
      throw ValidationError("--concurrency: \(concurrency) is out of range (at most \(Self.maxConcurrency))")
    }
    if let componentLogLevel {
      do {
        _ = try ProxyOptions.parseComponentLogLevels(componentLogLevel)
      } catch {
        throw ValidationError("\(error)")
      }
    }
    for tag in statsTags where tag.split(separator: ":", omittingEmptySubsequences: false).count != 2 {
      throw ValidationError("--stats-tag: '\(tag)' is not name:value")
    }
    if let socketMode, UInt32(socketMode, radix: 8) == nil {
      throw ValidationError("--socket-mode: '\(socketMode)' is not an octal mode")
    }
    if !version, !hotRestartVersion, configPath == nil, configYAML == nil {
      throw ValidationError("at least one of --config-path (-c) or --config-yaml is required")
    }
  }

  var options: ProxyOptions {
    var options = ProxyOptions()
    options.configPath = configPath
    options.configYAML = configYAML
    options.mode = mode
    options.allowUnknownStaticFields = allowUnknownStaticFields
    options.rejectUnknownDynamicFields = rejectUnknownDynamicFields
    options.ignoreUnknownDynamicFields = ignoreUnknownDynamicFields
    options.drainTimeSeconds = drainTimeSeconds
    options.drainStrategy = drainStrategy
    options.parentShutdownTimeSeconds = parentShutdownTimeSeconds
    options.restartEpoch = restartEpoch
    options.disableHotRestart = disableHotRestart
    options.localAddressIPVersion = localAddressIPVersion
    options.fileFlushIntervalMilliseconds = fileFlushIntervalMilliseconds
    options.fileFlushMinSizeKB = fileFlushMinSizeKB
    options.concurrency = concurrency
    options.logLevel = logLevel
    options.componentLogLevels =
      componentLogLevel.flatMap { try? ProxyOptions.parseComponentLogLevels($0) } ?? []
    options.logFormat = logFormat
    options.logFormatEscaped = logFormatEscaped
    options.logPath = logPath
    options.serviceCluster = serviceCluster
    options.serviceNode = serviceNode
    options.serviceZone = serviceZone
    options.baseID = baseID
    options.useDynamicBaseID = useDynamicBaseID
    options.baseIDPath = baseIDPath
    options.skipHotRestartOnNoParent = skipHotRestartOnNoParent
    options.enableCoreDump = enableCoreDump
    options.adminAddressPath = adminAddressPath
    return options
  }

  func run() async throws {
    if version {
      print("pilotfish-proxy version: 0.1.0 (Envoy v3 API subset)")
      return
    }
    if hotRestartVersion {
      print("disabled")
      return
    }
    let logLevels = LogLevelControl(level: logLevel.swiftLogLevel)
    for (component, level) in options.componentLogLevels {
      _ = logLevels.set(component, level.swiftLogLevel)
    }
    let status = await ProxyMain.run(
      options, logLevels: logLevels, logHandler: { StreamLogHandler.standardError(label: $0) },
      output: { print($0) },
      errorOutput: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
    if status != 0 { throw ExitCode(status) }
  }

  /// Envoy exits 1 on any bad command line (ArgumentParser's default would be 64).
  static func main() async {
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        print(fullMessage(for: error))
        Foundation.exit(0)
      }
      if error is ExitCode { Foundation.exit(code.rawValue) }
      FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
      Foundation.exit(1)
    }
  }
}

extension ProxyOptions.Mode: ExpressibleByArgument {}
extension ProxyOptions.DrainStrategy: ExpressibleByArgument {}
extension ProxyOptions.IPVersion: ExpressibleByArgument {}
extension ProxyOptions.LogLevel: ExpressibleByArgument {}

extension ProxyOptions.LogLevel {
  var swiftLogLevel: Logger.Level {
    switch self {
    case .trace: .trace
    case .debug: .debug
    case .info: .info
    case .warning, .warn: .warning
    case .error: .error
    case .critical, .off: .critical
    }
  }
}
