import Agent
import ArgumentParser
import Foundation

/// `pilotfish request`: pilot-agent's `request` — one HTTP call to a local sidecar port, body printed.
/// The native-sidecar preStop hook runs `pilotfish request --debug-port=15020 POST drain`.
struct Request: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "request",
    abstract:
      "Send an HTTP request to a local sidecar port (proxy admin 15000 by default) and print the body.",
    discussion: """
      Exit codes: 0 on success; 1 when the call fails or answers a status above 399 other than 404 \
      (pilot-agent's rule).
      """
  )

  @Argument(help: "HTTP method, e.g. GET or POST.")
  var method: String
  @Argument(help: "Path, e.g. drain or /stats.")
  var path: String
  @Argument(help: "Optional request body.")
  var body: String?
  @Option(name: .customLong("debug-port"), help: "Local port: 15000 (admin), 15020 (agent), 15021, 15004.")
  var debugPort = 15000
  /// Any other pilot-agent flag: accepted and ignored.
  @Argument(parsing: .allUnrecognized)
  var ignored: [String] = []

  func run() throws {
    // Pilotfish also allows any port when PILOTFISH_REQUEST_ANY_PORT=true (tests bind free ports).
    let anyPort = ProcessInfo.processInfo.environment["PILOTFISH_REQUEST_ANY_PORT"] == "true"
    guard LocalCommands.debugPorts.contains(debugPort) || (anyPort && (1...65535).contains(debugPort)) else {
      throw ValidationError("invalid value \(debugPort) for --debug-port: use 15000, 15020, 15021 or 15004")
    }
    let (method, path, body, port) = (self.method, self.path, self.body, debugPort)
    let result = runAsync { () async -> (text: String?, error: String?) in
      do {
        return (try await LocalCommands.request(method: method, path: path, body: body, port: port), nil)
      } catch {
        return (nil, "\(error)")
      }
    }
    if let error = result.error {
      FileHandle.standardError.write(Data("pilotfish request: error: \(error)\n".utf8))
      throw ExitCode.failure
    }
    let text = result.text ?? ""
    print(text, terminator: text.hasSuffix("\n") || text.isEmpty ? "" : "\n")
  }
}
