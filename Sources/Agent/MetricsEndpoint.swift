internal import Foundation
package import Logging
internal import PilotfishKit

/// The application's metric targets from `ISTIO_PROMETHEUS_ANNOTATIONS` (the injector moves the pod's
/// `prometheus.io/*` annotations there).
package struct PrometheusScrapeTargets: Equatable, Sendable {
  package struct Target: Equatable, Sendable {
    package var port: Int
    package var path: String
  }

  package var targets: [Target]

  /// Ports an application target may not use (pilot-agent's reserved set).
  package static let reservedPorts: Set<Int> = [
    15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090,
  ]

  /// nil when unset or `scrape` is "false". Throws naming the variable for malformed JSON or a port that is
  /// reserved or collides with `usedPorts`.
  package static func parse(
    _ text: String?, usedPorts: Set<Int>, source: String = "ISTIO_PROMETHEUS_ANNOTATIONS"
  ) throws(AgentError) -> PrometheusScrapeTargets? {
    guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
    let root: JSONValue
    do {
      root = try JSONValue.parseJSON(text)
    } catch {
      throw AgentError(.invalidEnvironment, "\(source): malformed JSON", cause: error)
    }
    guard let object = root.objectValue else {
      throw AgentError(.invalidEnvironment, "\(source): expected a JSON object")
    }
    let fields = FieldReader(object: object, source: source, code: .invalidEnvironment)
    if try fields.string("scrape")?.lowercased() == "false" { return nil }
    func target(_ f: FieldReader) throws(AgentError) -> Target {
      let port = try f.port("port") ?? 80
      var path = try f.string("path") ?? "/metrics"
      if path.isEmpty { path = "/metrics" }
      if !path.hasPrefix("/") { path = "/" + path }
      if reservedPorts.contains(port) || usedPorts.contains(port) {
        throw f.fail("port", "port \(port) is reserved for the sidecar")
      }
      return Target(port: port, path: path)
    }
    var targets: [Target] = []
    if case .array(let list)? = object["targets"], !list.isEmpty {
      for (i, entry) in list.enumerated() {
        guard let o = entry.objectValue else { throw fields.fail("targets[\(i)]", "expected an object") }
        targets.append(
          try target(FieldReader(object: o, source: "\(source) targets[\(i)]", code: .invalidEnvironment)))
      }
    } else {
      targets = [try target(fields)]
    }
    return PrometheusScrapeTargets(targets: targets)
  }
}

/// Serves the merged `/stats/prometheus` (on 15090 and 15020): agent metrics, then the proxy's
/// `/stats/prometheus` from its admin API, then the application targets (scraped concurrently). Always 200;
/// a failing source is logged, counted in `istio_agent_scrape_failures_total{type}` and left out.
package struct MetricsEndpoint: Sendable {
  package var adminPort: Int
  package var mergeProxyStats: Bool
  package var application: PrometheusScrapeTargets?
  package var defaultTimeout: Duration = .seconds(5)
  private let state: AgentState
  private let client: LocalHTTPClient
  private let logger: Logger

  package init(
    adminPort: Int, mergeProxyStats: Bool = true, application: PrometheusScrapeTargets?, state: AgentState,
    client: LocalHTTPClient = LocalHTTPClient(), logger: Logger
  ) {
    self.adminPort = adminPort
    self.mergeProxyStats = mergeProxyStats
    self.application = application
    self.state = state
    self.client = client
    self.logger = logger
  }

  /// The merged body and its Content-Type for a scrape with these request headers and query string.
  package func scrape(headers: [(String, String)], query: String?) async -> (
    contentType: String, body: String
  ) {
    state.countScrape()
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    let accept = header("accept")
    var forwarded: [(String, String)] = []
    if let agent = header("user-agent") { forwarded.append(("User-Agent", agent)) }
    var timeout = defaultTimeout
    if let value = header("x-prometheus-scrape-timeout-seconds") {
      forwarded.append(("X-Prometheus-Scrape-Timeout-Seconds", value))
      timeout = Self.scrapeTimeout(header: value, default: defaultTimeout)
    }
    let proxyHeaders =
      forwarded + [("Accept", PrometheusMerge.filteredAccept(accept, allowOpenMetrics: false))]
    let appHeaders = forwarded + [("Accept", PrometheusMerge.filteredAccept(accept, allowOpenMetrics: true))]

    let adminPort = self.adminPort
    let client = self.client
    let deadline = timeout
    async let proxyBody: String? =
      mergeProxyStats
      ? fetch(
        client: client, host: "127.0.0.1", port: adminPort,
        path: "/stats/prometheus" + (query.map { $0.isEmpty ? "" : "?" + $0 } ?? ""), headers: proxyHeaders,
        timeout: deadline
      ).map(\.body) : nil
    let targets = application?.targets ?? []
    let appResults = await withTaskGroup(of: (Int, (body: String, contentType: String?)?).self) { group in
      for (index, target) in targets.enumerated() {
        group.addTask {
          (
            index,
            await fetch(
              client: client, host: "localhost", port: target.port, path: target.path, headers: appHeaders,
              timeout: deadline)
          )
        }
      }
      var results = [(body: String, contentType: String?)?](repeating: nil, count: targets.count)
      for await (index, result) in group { results[index] = result }
      return results
    }
    let proxy = await proxyBody
    if mergeProxyStats && proxy == nil { state.countScrapeFailure(.envoy) }

    var format = MetricsFormat.text
    var decided = false
    var appBodies: [String] = []
    for (target, result) in zip(targets, appResults) {
      guard let result else {
        state.countScrapeFailure(.application)
        logger.warning("cannot scrape application metrics on port \(target.port)\(target.path)")
        continue
      }
      let f = MetricsFormat(contentType: result.contentType)
      if !decided {
        format = f
        decided = true
      } else if f != format {
        format = .text
      }
      appBodies.append(result.body)
    }
    let agent = AgentMetrics.render(state.metricsSnapshot, startTime: state.startTime, format: format)
    let merged = PrometheusMerge.merge([agent, proxy ?? ""] + appBodies, format: format)
    if !merged.duplicates.isEmpty {
      logger.debug("dropped duplicated metric families: \(merged.duplicates.joined(separator: ", "))")
    }
    return (format.contentType, merged.text)
  }

  /// The longest wait a scrape's `X-Prometheus-Scrape-Timeout-Seconds` may ask for.
  package static let maxScrapeTimeout: Duration = .seconds(60)

  /// The wait for one scrape from the header's value (fractional seconds, as Prometheus sends it): a value
  /// that is not a finite number above zero (`NaN`, `inf`, `-1`, `abc`) is ignored, one above
  /// ``maxScrapeTimeout`` (`1e300`) is clamped to it. The header is untrusted: nothing here can trap.
  package static func scrapeTimeout(header value: String, default fallback: Duration) -> Duration {
    guard let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds > 0
    else { return fallback }
    let limit = Double(maxScrapeTimeout.components.seconds)
    if seconds >= limit { return maxScrapeTimeout }
    // 0 < seconds < 60: the product fits an Int64 comfortably.
    return .microseconds(Int64((seconds * 1_000_000).rounded(.up)))
  }

  private func fetch(
    client: LocalHTTPClient, host: String, port: Int, path: String, headers: [(String, String)],
    timeout: Duration
  ) async -> (body: String, contentType: String?)? {
    do {
      let response = try await client.request(
        host: host, port: port, path: path, headers: headers, timeout: timeout)
      guard response.status == 200 else {
        logger.warning("scrape of \(host):\(port)\(path) answered \(response.status)")
        return nil
      }
      return (response.text, response.header("content-type"))
    } catch {
      logger.warning("scrape of \(host):\(port)\(path) failed: \(error)")
      return nil
    }
  }
}
