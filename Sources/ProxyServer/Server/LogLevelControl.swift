package import Logging
internal import Synchronization

/// Envoy-style named loggers whose levels can change at run time (`POST /logging`). Every logger the
/// proxy creates goes through a handler that reads its component's current level.
package final class LogLevelControl: Sendable {
  /// The components Envoy lists in `/logging` that this proxy uses.
  package static let components = [
    "admin", "config", "connection", "conn_handler", "dns", "filter", "http", "main", "misc", "pool",
    "router",
    "runtime", "upstream",
  ]

  private let levels: Mutex<[String: Logger.Level]>

  package init(level: Logger.Level) {
    levels = Mutex(Dictionary(uniqueKeysWithValues: Self.components.map { ($0, level) }))
  }

  package func level(of component: String) -> Logger.Level {
    levels.withLock { $0[component] ?? .info }
  }

  package func setAll(_ level: Logger.Level) {
    levels.withLock { levels in
      for key in levels.keys { levels[key] = level }
    }
  }

  /// False when the component is unknown.
  package func set(_ component: String, _ level: Logger.Level) -> Bool {
    levels.withLock { levels in
      guard levels[component] != nil else { return false }
      levels[component] = level
      return true
    }
  }

  package var snapshot: [(String, Logger.Level)] {
    levels.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
  }

  /// A logger for `component` that honours this control; `base` makes the underlying handler.
  package func logger(
    _ component: String, base: @escaping @Sendable (String) -> any LogHandler
  ) -> Logger {
    Logger(label: "pilotfish-proxy.\(component)") { label in
      ControlledLogHandler(component: component, control: self, inner: base(label))
    }
  }

  /// Envoy's level names.
  package static func parse(_ text: String) -> Logger.Level? {
    switch text {
    case "trace": .trace
    case "debug": .debug
    case "info": .info
    case "warning", "warn": .warning
    case "error": .error
    case "critical", "off": .critical
    default: nil
    }
  }

  package static func envoyName(_ level: Logger.Level) -> String {
    switch level {
    case .trace: "trace"
    case .debug: "debug"
    case .info, .notice: "info"
    case .warning: "warning"
    case .error: "error"
    case .critical: "critical"
    }
  }
}

struct ControlledLogHandler: LogHandler {
  let component: String
  let control: LogLevelControl
  var inner: any LogHandler

  var logLevel: Logger.Level {
    get { control.level(of: component) }
    set { _ = control.set(component, newValue) }
  }

  var metadata: Logger.Metadata {
    get { inner.metadata }
    set { inner.metadata = newValue }
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { inner[metadataKey: key] }
    set { inner[metadataKey: key] = newValue }
  }

  func log(
    level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
    function: String, line: UInt
  ) {
    inner.log(
      level: level, message: message, metadata: metadata, source: source, file: file, function: function,
      line: line)
  }
}
