package import Logging
package import NIOCore
package import Synchronization

/// Shared state every connection's handlers reach: clusters, stats, drain state, the connection registry.
/// Created once by the composition root.
package final class ProxyContext: Sendable {
  package let clusterManager: ClusterManager
  package let stats: StatsStore
  package let logger: Logger
  package let drain: DrainState
  package let connections = ConnectionRegistry()
  package let accessLog: AccessLogSink
  private let nextConnectionID = Atomic<UInt64>(0)

  package init(clusterManager: ClusterManager, stats: StatsStore, logger: Logger, accessLog: AccessLogSink) {
    self.clusterManager = clusterManager
    self.stats = stats
    self.logger = logger
    self.drain = DrainState()
    self.accessLog = accessLog
  }

  package func makeConnectionID() -> UInt64 {
    nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue
  }
}

/// Which traffic directions are draining, and how hard. HTTP connections on a draining listener answer
/// with `connection: close` — always with `--drain-strategy immediate`; with `gradual` (Envoy's default)
/// with a probability that grows linearly from 0 to 1 over the drain time, so clients move away in a
/// spread rather than all at once. Listeners stop accepting at the end of the drain.
package final class DrainState: Sendable {
  private let inbound = Atomic<Bool>(false)
  private let outbound = Atomic<Bool>(false)
  private let gradual = Atomic<Bool>(false)
  private let startedAt = Atomic<Int64>(0)
  private let drainNanoseconds = Atomic<Int64>(0)

  package init() {}

  /// Starts draining; `gradual` spreads the closes over `drainTime`.
  package func start(inboundOnly: Bool, gradual: Bool = false, drainTime: Duration = .zero) {
    // Saturating: a drain time beyond ~292 years is "forever", not an overflow.
    let seconds = drainTime.components.seconds
    let nanos =
      seconds >= Int64.max / 1_000_000_000
      ? Int64.max : seconds * 1_000_000_000 + drainTime.components.attoseconds / 1_000_000_000
    drainNanoseconds.store(max(0, nanos), ordering: .relaxed)
    startedAt.store(NIODeadline.now().uptimeNanoseconds.clampedToInt64, ordering: .relaxed)
    self.gradual.store(gradual, ordering: .relaxed)
    inbound.store(true, ordering: .relaxed)
    if !inboundOnly { outbound.store(true, ordering: .relaxed) }
  }

  package func isDraining(_ direction: Listener.TrafficDirection) -> Bool {
    switch direction {
    case .inbound: inbound.load(ordering: .relaxed)
    case .outbound, .unspecified: outbound.load(ordering: .relaxed)
    }
  }

  /// Whether a connection in `direction` should be closed now (Envoy's `drainClose()`).
  package func shouldClose(_ direction: Listener.TrafficDirection) -> Bool {
    var generator = SystemRandomNumberGenerator()
    return shouldClose(direction, now: NIODeadline.now(), using: &generator)
  }

  package func shouldClose(
    _ direction: Listener.TrafficDirection, now: NIODeadline,
    using generator: inout some RandomNumberGenerator
  ) -> Bool {
    guard isDraining(direction) else { return false }
    let total = drainNanoseconds.load(ordering: .relaxed)
    guard gradual.load(ordering: .relaxed), total > 0 else { return true }
    let elapsed = now.uptimeNanoseconds.clampedToInt64 - startedAt.load(ordering: .relaxed)
    guard elapsed < total else { return true }
    return Int64.random(in: 0..<total, using: &generator) < elapsed
  }

  package var anyDraining: Bool { inbound.load(ordering: .relaxed) || outbound.load(ordering: .relaxed) }
}

extension UInt64 {
  fileprivate var clampedToInt64: Int64 { self > UInt64(Int64.max) ? .max : Int64(self) }
}

/// How many downstream connections are open (for the overload manager's global limit). The data path counts
/// its connections in and out; its workers close what is left at shutdown.
package final class ConnectionRegistry: Sendable {
  private let open = Atomic<Int>(0)

  package init() {}

  package func engineConnectionOpened() { open.add(1, ordering: .relaxed) }
  package func engineConnectionClosed() { open.subtract(1, ordering: .relaxed) }

  package var count: Int { open.load(ordering: .relaxed) }
}
