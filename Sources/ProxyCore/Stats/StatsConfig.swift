/// The subset of Envoy's `envoy.config.metrics.v3.StatsConfig` the proxy honours: tag specifiers
/// (`stats_tags`, `use_all_default_tags`), the stats matcher (`stats_matcher`) and the histogram bucket
/// bounds (`histogram_bucket_settings`, one list for every histogram).
package struct StatsConfig: Sendable {
  /// `TagSpecifier.tag_value`.
  package enum TagValue: Sendable {
    /// Envoy's `regex`: the first capture group is removed from the name, the second (else the first)
    /// is the tag value. An empty regex selects the default extractor(s) named `name`.
    case regex(String)
    /// Envoy's `fixed_value`: the tag is added to every stat, nothing is removed from the name.
    case fixedValue(String)
  }

  /// `TagSpecifier`.
  package struct TagSpecifier: Sendable {
    package var name: String
    package var value: TagValue

    package init(name: String, value: TagValue) {
      self.name = name
      self.value = value
    }
  }

  /// `StatsMatcher`: decides, when a stat is created, whether it exists at all.
  package enum Matcher: Sendable {
    case acceptAll
    /// `reject_all: true`.
    case rejectAll
    /// `inclusion_list`: only names matching one of the matchers are kept.
    case inclusion([StringMatcher])
    /// `exclusion_list`: names matching one of the matchers are dropped.
    case exclusion([StringMatcher])
  }

  /// Envoy's default histogram bucket bounds, in milliseconds
  /// (`HistogramSettingsImpl::defaultBuckets`).
  package static let defaultHistogramBuckets: [Double] = [
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1_800_000,
    3_600_000,
  ]

  /// `HistogramBucketSettings`: histograms whose full name `match`es use `buckets`; the first matching
  /// setting wins, others use `histogramBuckets`.
  package struct HistogramBucketSetting: Sendable {
    package var match: StringMatcher
    package var buckets: [Double]

    package init(match: StringMatcher, buckets: [Double]) {
      self.match = match
      self.buckets = buckets
    }
  }

  package var tagSpecifiers: [TagSpecifier] = []
  /// `use_all_default_tags` (default true): Envoy's built-in extractors, tag names with an `envoy.` prefix.
  package var useAllDefaultTags: Bool = true
  package var matcher: Matcher = .acceptAll
  /// Bucket bounds (ms) of every histogram no `histogramBucketSettings` entry matches.
  package var histogramBuckets: [Double] = StatsConfig.defaultHistogramBuckets
  package var histogramBucketSettings: [HistogramBucketSetting] = []

  package init() {}
}
