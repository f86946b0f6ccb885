internal import Synchronization

/// A value the control plane replaces while workers read it: a worker keeps the value it read together with
/// the generation, and re-reads (one lock) only when the generation moved — so a steady data path pays one
/// atomic load per use and takes no lock.
package final class ConfigCell<Value: Sendable>: Sendable {
  private let value: Mutex<Value>
  private let counter = Atomic<UInt64>(0)

  package init(_ value: Value) { self.value = Mutex(value) }

  /// Bumped by every `publish`.
  package var generation: UInt64 { counter.load(ordering: .acquiring) }

  package var current: Value { value.withLock { $0 } }

  package func publish(_ new: Value) {
    value.withLock { $0 = new }
    counter.wrappingAdd(1, ordering: .releasing)
  }
}
