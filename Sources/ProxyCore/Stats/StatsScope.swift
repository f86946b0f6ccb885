/// A name prefix over a store: `scope("cluster.x").counter("y")` is `store.counter("cluster.x.y")`.
package struct StatsScope: Sendable {
  package let store: StatsStore
  /// Sanitized, without a trailing dot.
  package let prefix: String

  init(store: StatsStore, prefix: String) {
    self.store = store
    self.prefix = prefix
  }

  package func counter(_ name: String) -> Counter { store.counter(prefix + "." + name) }
  package func gauge(_ name: String) -> Gauge { store.gauge(prefix + "." + name) }
  package func histogram(_ name: String) -> Histogram { store.histogram(prefix + "." + name) }
  package func scope(_ name: String) -> StatsScope { store.scope(prefix + "." + name) }
}
