package import Foundation

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The agent's own metrics, `istio_agent_*` as pilot-agent names them (process collector, scrapes, scrape
/// failures by source, startup duration), plus `istio_agent_proxy_restarts_total` (Pilotfish restarts the
/// proxy; pilot-agent leaves that to the kubelet).
package enum AgentMetrics {
  package static func render(_ snapshot: AgentState.MetricsSnapshot, startTime: Date, format: MetricsFormat)
    -> String
  {
    var out = ""
    let openMetrics = format != .text
    func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)])
    {
      // OpenMetrics names a counter family without its `_total` suffix.
      let familyName =
        openMetrics && type == "counter" && name.hasSuffix("_total")
        ? String(name.dropLast("_total".count)) : name
      out += "# HELP \(familyName) \(help)\n# TYPE \(familyName) \(type)\n"
      for sample in samples {
        out += "\(name)\(sample.labels) \(formatValue(sample.value))\n"
      }
    }
    var usage = rusage()
    #if os(Linux)
      getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
      getrusage(RUSAGE_SELF, &usage)
    #endif
    let cpu =
      Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
      + Double(usage.ru_stime.tv_usec) / 1e6
    family(
      "istio_agent_process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
      [("", cpu)])
    if let rss = residentMemoryBytes() {
      family(
        "istio_agent_process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", rss)])
    }
    if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
      family(
        "istio_agent_process_open_fds", "gauge", "Number of open file descriptors.", [("", Double(fds.count))]
      )
    }
    family(
      "istio_agent_process_start_time_seconds", "gauge",
      "Start time of the process since unix epoch in seconds.",
      [("", startTime.timeIntervalSince1970.rounded())])
    family(
      "istio_agent_scrapes_total", "counter", "The total number of scrapes.", [("", Double(snapshot.scrapes))]
    )
    family(
      "istio_agent_scrape_failures_total", "counter", "The total number of failed scrapes.",
      AgentState.ScrapeSource.allCases.map {
        (#"{type="\#($0.rawValue)"}"#, Double(snapshot.scrapeFailures[$0] ?? 0))
      })
    if let startup = snapshot.startupDuration {
      family(
        "istio_agent_startup_duration_seconds", "gauge",
        "The time from the process starting to being marked ready.",
        [("", startup)])
    }
    family(
      "istio_agent_proxy_restarts_total", "counter", "The number of times the agent restarted the proxy.",
      [("", Double(snapshot.restarts))])
    family(
      "istio_agent_proxy_running", "gauge", "Whether the supervised proxy process is running (1) or not (0).",
      [("", snapshot.proxyRunning ? 1 : 0)])
    return out
  }

  static func formatValue(_ value: Double) -> String {
    if value.rounded() == value && abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
  }

  static func residentMemoryBytes() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
  }
}
