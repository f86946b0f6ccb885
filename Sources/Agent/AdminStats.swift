internal import Foundation

/// The proxy admin's `/stats` text (`name: value` per line) and the decisions pilot-agent takes from it:
/// readiness (`status/ready/probe.go`, `status/util/stats.go`) and the zero-active-connections drain
/// (`pkg/envoy/agent.go`). Pure functions, tested without sockets.
package enum AdminStats {
  /// The readiness queries pilot-agent sends (the client percent-encodes `^`, `\\`, `|` on the wire).
  package static let configQuery =
    #"/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$"#
  package static let liveQuery = #"/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)"#
  package static let activeConnectionsQuery = "/stats?usedonly&filter=downstream_cx_active$"

  /// Counter and gauge lines; histogram lines and anything unparsable are skipped.
  package static func parse(_ text: String) -> [String: Double] {
    var stats: [String: Double] = [:]
    for line in text.split(separator: "\n") {
      guard let colon = line.lastIndex(of: ":") else { continue }
      let name = line[..<colon].trimmingCharacters(in: .whitespaces)
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      // The admin socket is local but its text is still input: `inf`, `nan` or 1e300 would trap in the
      // Int conversions below, so only finite values within ±2^53 (exact in a Double) are kept.
      guard !name.isEmpty, let number = Double(value), number.isFinite, abs(number) <= 9_007_199_254_740_992
      else { continue }
      stats[name] = number
    }
    return stats
  }

  /// nil when the proxy has accepted both CDS and LDS at least once; otherwise Istio's reason.
  package static func configNotReceivedReason(_ stats: [String: Double]) -> String? {
    let cdsOK = stats["cluster_manager.cds.update_success"] ?? 0
    let cdsRejected = stats["cluster_manager.cds.update_rejected"] ?? 0
    let ldsOK = stats["listener_manager.lds.update_success"] ?? 0
    let ldsRejected = stats["listener_manager.lds.update_rejected"] ?? 0
    if cdsOK > 0 && ldsOK > 0 { return nil }
    let detail =
      "cds updates: \(Int(cdsOK)) successful, \(Int(cdsRejected)) rejected; "
      + "lds updates: \(Int(ldsOK)) successful, \(Int(ldsRejected)) rejected"
    if cdsOK == 0 && ldsOK == 0 && cdsRejected == 0 && ldsRejected == 0 {
      return "config not received from XDS server (is Istiod running?): \(detail)"
    }
    if cdsRejected > 0 || ldsRejected > 0 {
      return "config received from XDS server, but was rejected: \(detail)"
    }
    return "config not fully received from XDS server: \(detail)"
  }

  /// nil when `server.state == 0` (LIVE) and `listener_manager.workers_started == 1`; both must be present.
  package static func notLiveReason(_ stats: [String: Double]) -> String? {
    guard let state = stats["server.state"] else { return "server.state is not yet reported" }
    guard let workers = stats["listener_manager.workers_started"] else {
      return "listener_manager.workers_started is not yet reported"
    }
    if state != 0 {
      let names = [1: "DRAINING", 2: "PRE_INITIALIZING", 3: "INITIALIZING"]
      return "server is not live, current state is: \(Int(state)) \(names[Int(state)] ?? "UNKNOWN")"
    }
    if workers != 1 { return "workers have not yet started" }
    return nil
  }

  /// The active downstream connections pilot-agent waits for: `listener.*` lines only, skipping per-worker
  /// lines, internal listeners, the admin listener and the metrics/health listeners. -1 when no line counts.
  package static func activeConnections(_ text: String, excludedPorts: [Int] = [15021, 15090]) -> Int {
    var total = 0
    var seen = false
    for (name, value) in parse(text) {
      guard name.hasPrefix("listener."), !name.contains("worker_") else { continue }
      if name.hasPrefix("listener.envoy_internal") || name.hasPrefix("listener.admin.") { continue }
      if excludedPorts.contains(where: { name.hasPrefix("listener.0.0.0.0_\($0).") }) { continue }
      seen = true
      let (sum, overflow) = total.addingReportingOverflow(Int(value))
      total = overflow ? (value > 0 ? Int.max : Int.min) : sum
    }
    return seen ? total : -1
  }
}
