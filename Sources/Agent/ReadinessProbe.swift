package import Logging

/// `/healthz/ready` (pilot-agent `status/ready/probe.go`): the proxy must have accepted CDS and LDS (skipped
/// when the bootstrap has no control plane), and be LIVE with its workers started. Cached once ready for a
/// given proxy start; 503 while no proxy runs and while terminating.
package struct ReadinessProbe: Sendable {
  package var adminPort: Int
  package var checkConfig: Bool
  private let state: AgentState
  private let client: LocalHTTPClient
  private let logger: Logger

  package init(
    adminPort: Int, checkConfig: Bool, state: AgentState, client: LocalHTTPClient = LocalHTTPClient(),
    logger: Logger
  ) {
    self.adminPort = adminPort
    self.checkConfig = checkConfig
    self.state = state
    self.client = client
    self.logger = logger
  }

  /// nil when ready, else why not.
  package func check() async -> String? {
    let reason = await evaluate()
    if let reason {
      if state.noteNotReady(reason) { logger.warning("not ready: \(reason)") }
    }
    return reason
  }

  private func evaluate() async -> String? {
    if state.isTerminating { return "server is terminated" }
    guard let generation = state.runningGeneration else { return "proxy is not running" }
    if state.isReadyCached(generation: generation) { return nil }
    if checkConfig {
      switch await stats(AdminStats.configQuery) {
      case .failure(let reason): return reason
      case .success(let stats):
        if let reason = AdminStats.configNotReceivedReason(stats) { return reason }
      }
    }
    switch await stats(AdminStats.liveQuery) {
    case .failure(let reason): return reason
    case .success(let stats):
      if let reason = AdminStats.notLiveReason(stats) { return reason }
    }
    if state.markReady(generation: generation) {
      _ = state.noteNotReady("")
      logger.info("proxy is ready", metadata: ["agent.proxy.generation": "\(generation)"])
    }
    return nil
  }

  private enum Outcome {
    case success([String: Double])
    case failure(String)
  }

  private func stats(_ query: String) async -> Outcome {
    do {
      let response = try await client.request(
        host: "127.0.0.1", port: adminPort, path: query, timeout: .seconds(3))
      guard response.status == 200 else {
        return .failure("proxy admin answered \(response.status) to \(query)")
      }
      return .success(AdminStats.parse(response.text))
    } catch {
      return .failure("cannot reach the proxy admin: \(error)")
    }
  }
}
