internal import Synchronization

/// The drain of one filter chain that a listener update changed or removed: HTTP connections on it answer
/// with `connection: close` from now on, and when the drain time is over the data path closes whatever
/// is still open on it (tcp_proxy connections included), as Envoy does for a drained listener.
package final class ChainDrain: Sendable {
  private let draining = Atomic<Bool>(false)

  package init() {}

  package var isDraining: Bool { draining.load(ordering: .relaxed) }

  package func start() { draining.store(true, ordering: .relaxed) }
}
