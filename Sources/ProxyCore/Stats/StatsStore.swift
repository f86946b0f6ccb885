internal import Synchronization

/// The proxy's stats: counters, gauges and histograms by Envoy name, with Envoy's tag extraction and
/// stats matcher, rendered as the admin `/stats` text and JSON and `/stats/prometheus`.
///
/// Looking a stat up takes a lock; callers look it up once and keep the instance, whose updates are
/// lock-free (histograms: a short lock). Tag extraction and the stats-matcher decision happen once, when a
/// stat is created. A name the matcher rejects gets a shared no-op-like instance that is never listed, so
/// memory follows what the configuration asks for.
package final class StatsStore: Sendable {
  private let tagProducer: TagProducer
  private let matcher: StatsConfig.Matcher
  let histogramBuckets: [Double]
  private let histogramBucketSettings: [(match: StringMatcher, buckets: [Double])]
  private let registry = Mutex(Registry())

  private let rejectedCounter = Counter(identity: StatIdentity(name: "", tagExtractedName: "", tags: []))
  private let rejectedGauge = Gauge(identity: StatIdentity(name: "", tagExtractedName: "", tags: []))
  private let rejectedHistogram: Histogram

  struct Registry: Sendable {
    var counters: [String: Counter] = [:]
    var gauges: [String: Gauge] = [:]
    var histograms: [String: Histogram] = [:]
    /// Names the matcher refused, so a repeated lookup does not run the matcher again (Envoy keeps the
    /// same set).
    var rejected: Set<String> = []
  }

  /// Compiles every tag regex and matcher once; throws naming the bad one.
  package init(config: StatsConfig) throws(StatsConfigError) {
    tagProducer = try TagProducer(config: config)
    switch config.matcher {
    case .inclusion(let list) where list.isEmpty, .exclusion(let list) where list.isEmpty:
      throw StatsConfigError(
        .invalidMatcher, "stats_matcher: the list must have at least one pattern")
    default: matcher = config.matcher
    }
    histogramBuckets = try Self.validBuckets(config.histogramBuckets, path: "histogram_buckets")
    var settings: [(match: StringMatcher, buckets: [Double])] = []
    for (i, setting) in config.histogramBucketSettings.enumerated() {
      settings.append(
        (
          setting.match,
          try Self.validBuckets(setting.buckets, path: "histogram_bucket_settings[\(i)].buckets")
        ))
    }
    histogramBucketSettings = settings
    rejectedHistogram = Histogram(
      identity: StatIdentity(name: "", tagExtractedName: "", tags: []), bounds: histogramBuckets)
  }

  /// Sorted, de-duplicated bounds; throws unless non-empty, finite and positive.
  private static func validBuckets(_ buckets: [Double], path: String) throws(StatsConfigError) -> [Double] {
    guard !buckets.isEmpty, buckets.allSatisfy({ $0.isFinite && $0 > 0 }) else {
      throw StatsConfigError(
        .invalidBuckets, "\(path): buckets must be a non-empty list of positive finite numbers"
      )
    }
    return Array(Set(buckets)).sorted()
  }

  /// The bucket bounds a histogram of that full name gets.
  func histogramBuckets(for name: String) -> [Double] {
    histogramBucketSettings.first { $0.match.matches(name) }?.buckets ?? histogramBuckets
  }

  // MARK: Lookup

  /// The counter named `name` (`:` sanitized to `_`); the same instance for the same name.
  package func counter(_ name: String) -> Counter {
    lookup(name, rejected: rejectedCounter, \.counters) { Counter(identity: $0) }
  }

  package func gauge(_ name: String) -> Gauge {
    lookup(name, rejected: rejectedGauge, \.gauges) { Gauge(identity: $0) }
  }

  /// A histogram of values in milliseconds.
  package func histogram(_ name: String) -> Histogram {
    lookup(name, rejected: rejectedHistogram, \.histograms) { identity in
      Histogram(identity: identity, bounds: self.histogramBuckets(for: identity.name))
    }
  }

  /// `prefix` without a trailing dot; a leading or trailing dot is dropped and `:` sanitized, as Envoy
  /// does for scope prefixes (so a cluster named `outbound|80||a:b` gets `cluster.outbound|80||a_b.`).
  package func scope(_ prefix: String) -> StatsScope {
    var p = Substring(prefix)
    if p.hasSuffix(".") { p = p.dropLast() }
    if p.hasPrefix(".") { p = p.dropFirst() }
    return StatsScope(store: self, prefix: Self.sanitize(String(p)))
  }

  private func lookup<Stat: AnyObject & Sendable>(
    _ rawName: String, rejected: Stat, _ table: WritableKeyPath<Registry, [String: Stat]>,
    make: (StatIdentity) -> Stat
  ) -> Stat {
    let name = Self.sanitize(rawName)
    let (existing, wasRejected) = registry.withLock { r in
      (r[keyPath: table][name], r.rejected.contains(name))
    }
    if let existing { return existing }
    if wasRejected { return rejected }
    // Matcher and tag extraction run outside the lock; a racing creator's instance wins.
    guard accepts(name) else {
      registry.withLock { _ = $0.rejected.insert(name) }
      return rejected
    }
    let candidate = make(tagProducer.identity(of: name))
    return registry.withLock { r in
      if let existing = r[keyPath: table][name] { return existing }
      r[keyPath: table][name] = candidate
      return candidate
    }
  }

  /// The stats matcher's verdict on a full (sanitized) name.
  package func accepts(_ name: String) -> Bool {
    switch matcher {
    case .acceptAll: true
    case .rejectAll: false
    case .inclusion(let list): list.contains { $0.matches(name) }
    case .exclusion(let list): !list.contains { $0.matches(name) }
    }
  }

  /// Envoy's `Stats::Utility::sanitizeStatsName` character rule: `://`, `:/` and `:` become `_`, as does NUL.
  package static func sanitize(_ name: String) -> String {
    guard name.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 == 0 }) else { return name }
    return name.replacing("://", with: "_").replacing(":/", with: "_").replacing(":", with: "_")
      .replacing("\0", with: "_")
  }

  // MARK: Admin actions and reads

  /// Compiles an admin `?filter=` regex; a bad one throws `.invalidRegex` (answer 400).
  package static func compileFilter(_ text: String) throws(StatsConfigError) -> StatsFilter {
    try StatsFilter(text)
  }

  /// `POST /reset_counters`.
  package func resetCounters() {
    for counter in registry.withLock({ Array($0.counters.values) }) { counter.reset() }
  }

  /// Closes the current histogram interval (Envoy merges histograms on every stats flush).
  package func mergeHistograms() {
    for histogram in registry.withLock({ Array($0.histograms.values) }) { histogram.merge() }
  }

  package func counterValue(_ name: String) -> UInt64? {
    registry.withLock { $0.counters[Self.sanitize(name)] }?.value
  }

  package func gaugeValue(_ name: String) -> UInt64? {
    registry.withLock { $0.gauges[Self.sanitize(name)] }?.value
  }

  /// The tag-extracted name and tags of an existing stat of any kind (for tests and debugging).
  package func identity(of name: String) -> StatIdentity? {
    let name = Self.sanitize(name)
    return registry.withLock { r in
      r.counters[name]?.identity ?? r.gauges[name]?.identity ?? r.histograms[name]?.identity
    }
  }

  /// Every listed stat, taken under the lock once.
  func allStats() -> (counters: [Counter], gauges: [Gauge], histograms: [Histogram]) {
    registry.withLock { r in (Array(r.counters.values), Array(r.gauges.values), Array(r.histograms.values)) }
  }
}
