internal import Foundation
package import ProxyCore
internal import Synchronization

#if canImport(Glibc)
  internal import Glibc
#endif

/// Envoy's server state (ServerInfo.State numbering: LIVE 0, DRAINING 1, PRE_INITIALIZING 2,
/// INITIALIZING 3) and the `server.*` gauges that mirror it.
package final class ServerState: Sendable {
  package enum State: UInt64, Sendable {
    case live = 0
    case draining = 1
    case preInitializing = 2
    case initializing = 3

    package var name: String {
      switch self {
      case .live: "LIVE"
      case .draining: "DRAINING"
      case .preInitializing: "PRE_INITIALIZING"
      case .initializing: "INITIALIZING"
      }
    }
  }

  private let current = Mutex<State>(.preInitializing)
  private let healthCheckFailed = Atomic<Bool>(false)
  private let startNanos: UInt64
  private let stateGauge: Gauge
  private let liveGauge: Gauge
  private let uptimeGauge: Gauge
  private let memoryAllocated: Gauge
  private let memoryHeapSize: Gauge
  private let memoryPhysical: Gauge
  private let totalConnections: Gauge

  package init(stats: StatsStore, concurrency: Int) {
    startNanos = Self.monotonicNanos()
    stateGauge = stats.gauge("server.state")
    liveGauge = stats.gauge("server.live")
    uptimeGauge = stats.gauge("server.uptime")
    memoryAllocated = stats.gauge("server.memory_allocated")
    memoryHeapSize = stats.gauge("server.memory_heap_size")
    memoryPhysical = stats.gauge("server.memory_physical_size")
    totalConnections = stats.gauge("server.total_connections")
    stats.gauge("server.concurrency").set(UInt64(concurrency))
    stats.gauge("server.hot_restart_epoch").set(0)
    stats.gauge("server.parent_connections").set(0)
    stats.gauge("server.version").set(0)
    stateGauge.set(State.preInitializing.rawValue)
    liveGauge.set(0)
  }

  package var state: State {
    let base = current.withLock { $0 }
    if base == .live && healthCheckFailed.load(ordering: .relaxed) { return .draining }
    return base
  }

  package func set(_ state: State) {
    current.withLock { $0 = state }
    publish()
  }

  /// `/healthcheck/fail` and `/healthcheck/ok`.
  package func setHealthCheckFailed(_ failed: Bool) {
    healthCheckFailed.store(failed, ordering: .relaxed)
    publish()
  }

  private func publish() {
    let state = self.state
    stateGauge.set(state.rawValue)
    liveGauge.set(state == .live ? 1 : 0)
  }

  package var uptimeSeconds: UInt64 { (Self.monotonicNanos() - startNanos) / 1_000_000_000 }

  /// Refreshes the gauges that are sampled rather than counted (uptime, memory, connections).
  package func refreshSampledGauges(connections: Int) {
    uptimeGauge.set(uptimeSeconds)
    let memory = Self.memoryUsage()
    memoryAllocated.set(memory.allocated)
    memoryHeapSize.set(memory.heap)
    memoryPhysical.set(memory.resident)
    totalConnections.set(UInt64(connections))
  }

  static func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  /// From /proc/self/statm: resident set (reported as allocated and physical) and the data segment (heap).
  package static func memoryUsage() -> (allocated: UInt64, heap: UInt64, resident: UInt64) {
    guard let file = fopen("/proc/self/statm", "r") else { return (0, 0, 0) }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, file) != nil else { return (0, 0, 0) }
    let fields = String(cString: line).split(separator: " ").compactMap {
      UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    guard fields.count >= 6 else { return (0, 0, 0) }
    let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    return (fields[1] * page, fields[5] * page, fields[1] * page)
  }
}
