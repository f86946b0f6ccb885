internal import Synchronization

/// A distribution of values in milliseconds. `record` takes a short lock.
///
/// Like Envoy's `ParentHistogram`, it keeps an *interval* view and a *cumulative* view:
/// `StatsStore.mergeHistograms()` (the server calls it on its stats flush timer, Envoy's
/// `stats_flush_interval`, 5 s by default) closes the current interval. The admin output shows, per
/// quantile, `(interval, cumulative)` where *interval* is the last closed interval (NaN before the first
/// merge or when it was empty) and *cumulative* is everything recorded so far, unmerged values included —
/// so totals never lag behind, unlike Envoy where they wait for the next flush.
///
/// Quantiles are approximate (circllhist-style bins, see `LogLinearBins`). Prometheus bucket counts and
/// `_sum` are exact (`value <= le`); Envoy derives both from its bins, so its `_sum` is approximate.
package final class Histogram: Sendable {
  package let identity: StatIdentity
  private let usedFlag = Atomic<Bool>(false)
  private let state: Mutex<State>

  struct State: Sendable {
    var bounds: [Double]
    var current = LogLinearBins()
    var merged = LogLinearBins()
    var lastInterval = LogLinearBins()
    var merges = 0
    /// Disjoint counts: `[i]` holds values in `(bounds[i-1], bounds[i]]`; the last slot is above every bound.
    var bucketCounts: [UInt64]
    var count: UInt64 = 0
    var sum: Double = 0
  }

  /// What rendering needs, read under the lock once.
  struct Snapshot {
    var used: Bool
    var bounds: [Double]
    /// Cumulative counts per bound (`value <= bound`).
    var cumulativeBuckets: [UInt64]
    var count: UInt64
    var sum: Double
    var intervalQuantiles: [Double]
    var cumulativeQuantiles: [Double]
  }

  init(identity: StatIdentity, bounds: [Double]) {
    self.identity = identity
    state = Mutex(State(bounds: bounds, bucketCounts: [UInt64](repeating: 0, count: bounds.count + 1)))
  }

  package var name: String { identity.name }

  package func record(_ valueMs: Double) {
    guard !valueMs.isNaN else { return }
    let value = max(valueMs, 0)
    state.withLock { s in
      s.current.insert(value)
      var i = 0
      while i < s.bounds.count && value > s.bounds[i] { i += 1 }
      s.bucketCounts[i] &+= 1
      s.count &+= 1
      s.sum += value
    }
    markUsed(usedFlag)
  }

  /// True once a value was recorded.
  package var used: Bool { usedFlag.load(ordering: .relaxed) }

  func merge() {
    state.withLock { s in
      s.merged.merge(s.current)
      s.lastInterval = s.current
      s.current = LogLinearBins()
      s.merges += 1
    }
  }

  func snapshot(quantiles: [Double]) -> Snapshot {
    let used = self.used
    return state.withLock { s in
      var all = s.merged
      all.merge(s.current)
      var running: UInt64 = 0
      var cumulative: [UInt64] = []
      cumulative.reserveCapacity(s.bounds.count)
      for i in 0..<s.bounds.count {
        running &+= s.bucketCounts[i]
        cumulative.append(running)
      }
      return Snapshot(
        used: used, bounds: s.bounds, cumulativeBuckets: cumulative, count: s.count, sum: s.sum,
        intervalQuantiles: s.lastInterval.quantiles(quantiles), cumulativeQuantiles: all.quantiles(quantiles))
    }
  }
}
