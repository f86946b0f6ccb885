import ArgumentParser
import Logging

/// Logging for a subcommand: `--log-level` parsed (an unknown level names the flag), logs to standard error.
enum CommandLogging {
  /// Bootstraps swift-log once for the process and returns the command's logger.
  static func start(logLevel: String, label: String) throws -> Logger {
    guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
      throw ValidationError(
        "invalid value \"\(logLevel)\" for --log-level: use trace, debug, info, notice, warning or error")
    }
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    return Logger(label: label)
  }
}
