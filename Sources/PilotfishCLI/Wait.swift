import Agent
import ArgumentParser
import Foundation

/// `pilotfish wait`: pilot-agent's `wait` — polls the readiness URL until it answers 200.
struct Wait: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "wait",
    abstract: "Wait until the sidecar is ready (an HTTP 200 from --url).",
    discussion: "Exit codes: 0 once ready; 1 on timeout, with the last error."
  )

  @Option(name: .customLong("url"), help: "Readiness URL.")
  var url = "http://localhost:15020/healthz/ready"
  @Option(name: .customLong("timeoutSeconds"), help: "Give up after this many seconds.")
  var timeoutSeconds = 60
  @Option(name: .customLong("requestTimeoutMillis"), help: "Timeout of each request.")
  var requestTimeoutMillis = 500
  @Option(name: .customLong("periodMillis"), help: "Delay between requests.")
  var periodMillis = 500
  /// Any other pilot-agent flag (`--log_output_level`, ...): accepted and ignored.
  @Argument(parsing: .allUnrecognized)
  var ignored: [String] = []

  func run() throws {
    guard timeoutSeconds >= 0, requestTimeoutMillis > 0, periodMillis > 0 else {
      throw ValidationError("--timeoutSeconds, --requestTimeoutMillis and --periodMillis must be positive")
    }
    let url = self.url
    let timeout = Duration.seconds(timeoutSeconds)
    let period = Duration.milliseconds(periodMillis)
    let requestTimeout = Duration.milliseconds(requestTimeoutMillis)
    let error = runAsync { () async -> String? in
      do {
        try await LocalCommands.wait(
          url: url, timeout: timeout, period: period, requestTimeout: requestTimeout)
        return nil
      } catch {
        return "\(error)"
      }
    }
    if let error {
      FileHandle.standardError.write(Data("pilotfish wait: error: \(error)\n".utf8))
      throw ExitCode.failure
    }
    print("Envoy is ready!")
  }
}

/// Runs `body` to completion from a synchronous command (the root command stays a `ParsableCommand`).
func runAsync<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
  let done = DispatchSemaphore(value: 0)
  let box = ResultBox<T>()
  Task {
    box.value = await body()
    done.signal()
  }
  done.wait()
  return box.value!
}

private final class ResultBox<T>: @unchecked Sendable {
  var value: T?
}

/// `runAsync` for a throwing body: the synchronous root command runs async work to completion and
/// rethrows its error.
func runAsyncThrowing(_ body: @escaping @Sendable () async throws -> Void) throws {
  let result: Result<Void, any Error> = runAsync {
    do {
      try await body()
      return .success(())
    } catch {
      return .failure(error)
    }
  }
  try result.get()
}
