internal import Synchronization

/// A monotonically increasing count. `inc`/`add` are a relaxed atomic add and never lock; callers look the
/// counter up once (`StatsStore.counter(_:)`) and keep the instance.
package final class Counter: Sendable {
  package let identity: StatIdentity
  private let storage = Atomic<UInt64>(0)
  private let usedFlag = Atomic<Bool>(false)

  init(identity: StatIdentity) { self.identity = identity }

  package var name: String { identity.name }

  package func inc() { add(1) }

  package func add(_ n: UInt64) {
    storage.wrappingAdd(n, ordering: .relaxed)
    markUsed(usedFlag)
  }

  package var value: UInt64 { storage.load(ordering: .relaxed) }
  /// True once the counter was ever incremented (Envoy's `used()`, what `?usedonly` shows).
  package var used: Bool { usedFlag.load(ordering: .relaxed) }

  /// `/reset_counters`: the value goes back to 0; `used` stays set, as in Envoy.
  func reset() { storage.store(0, ordering: .relaxed) }
}

/// Sets a used flag without writing the shared cache line again once it is set.
@inline(__always) func markUsed(_ flag: borrowing Atomic<Bool>) {
  if !flag.load(ordering: .relaxed) { flag.store(true, ordering: .relaxed) }
}
