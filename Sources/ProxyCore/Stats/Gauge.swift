internal import Synchronization

/// A value that goes up and down. Every mutation is a relaxed atomic operation and marks the gauge used,
/// `set(0)` included (pilot-agent reads `server.state: 0` from `/stats?usedonly`). As Envoy's, the value is
/// unsigned; `sub` below zero wraps.
package final class Gauge: Sendable {
  package let identity: StatIdentity
  private let storage = Atomic<UInt64>(0)
  private let usedFlag = Atomic<Bool>(false)

  init(identity: StatIdentity) { self.identity = identity }

  package var name: String { identity.name }

  package func set(_ v: UInt64) {
    storage.store(v, ordering: .relaxed)
    markUsed(usedFlag)
  }

  package func inc() { add(1) }
  package func dec() { sub(1) }

  package func add(_ n: UInt64) {
    storage.wrappingAdd(n, ordering: .relaxed)
    markUsed(usedFlag)
  }

  package func sub(_ n: UInt64) {
    storage.wrappingSubtract(n, ordering: .relaxed)
    markUsed(usedFlag)
  }

  package var value: UInt64 { storage.load(ordering: .relaxed) }
  package var used: Bool { usedFlag.load(ordering: .relaxed) }
}
