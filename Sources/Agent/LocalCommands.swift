internal import Foundation

/// `pilotfish wait` and `pilotfish request`, pilot-agent's `app/wait.go` and `app/request.go`.
package enum LocalCommands {
  /// Polls `url` until it answers 200. Throws, with the last error, after `timeout`.
  package static func wait(
    url: String, timeout: Duration, period: Duration, requestTimeout: Duration,
    client: LocalHTTPClient = LocalHTTPClient()
  ) async throws(AgentError) {
    let target = try parse(url: url, flag: "--url")
    let deadline = ContinuousClock.now + timeout
    var lastError = "no attempt made"
    while true {
      do {
        let response = try await client.request(
          host: target.host, port: target.port, path: target.path, timeout: requestTimeout)
        if response.status == 200 { return }
        lastError = "HTTP status code \(response.status)"
      } catch {
        lastError = "\(error)"
      }
      if ContinuousClock.now + period > deadline {
        throw AgentError(
          .http, "timeout waiting for Envoy proxy to become ready. Last error: \(lastError)")
      }
      try? await Task.sleep(for: period)
    }
  }

  /// The ports `request --debug-port` accepts (pilot-agent: admin, status, health, and the xDS debug port).
  package static let debugPorts: Set<Int> = [15000, 15020, 15021, 15004]

  /// `request <method> <path> [body]` to `localhost:<port>`: the body of the answer; throws for a status
  /// above 399 other than 404 (as pilot-agent).
  package static func request(
    method: String, path: String, body: String?, port: Int, host: String = "127.0.0.1",
    timeout: Duration = .seconds(60), client: LocalHTTPClient = LocalHTTPClient()
  ) async throws(AgentError) -> String {
    let normalized = path.hasPrefix("/") ? path : "/" + path
    let response = try await client.request(
      method.uppercased(), host: host, port: port, path: normalized, body: Array((body ?? "").utf8),
      timeout: timeout)
    if response.status > 399 && response.status != 404 {
      throw AgentError(
        .http, "\(method.uppercased()) \(normalized): HTTP status code \(response.status): \(response.text)")
    }
    return response.text
  }

  static func parse(url: String, flag: String) throws(AgentError) -> (host: String, port: Int, path: String) {
    guard let components = URLComponents(string: url), components.scheme == "http",
      let host = components.host, !host.isEmpty
    else {
      throw AgentError(.invalidFlag, "\(flag): \"\(url)\" is not an http:// URL")
    }
    let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
    let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
    return (host == "localhost" ? "127.0.0.1" : host, components.port ?? 80, path + query)
  }
}
