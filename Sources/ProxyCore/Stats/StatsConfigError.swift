package import PilotfishKit

/// Why a `stats_config` (tag specifiers, stats matcher, histogram buckets) or an admin `?filter=` regex was
/// rejected. `description` names the offending regex or tag; equality compares what is shown.
package typealias StatsConfigError = DomainError<StatsConfigErrorCode>

package enum StatsConfigErrorCode: DomainErrorCode {
  /// A regular expression that does not compile (tag specifier, `safe_regex`, `?filter=`).
  case invalidRegex
  /// A tag specifier without a name, or with an empty regex and no default extractor of that name.
  case invalidTagSpecifier
  /// A string matcher that Envoy's proto validation rejects (empty prefix/suffix/contains, empty list).
  case invalidMatcher
  /// Histogram bucket bounds that are empty, not finite or not positive.
  case invalidBuckets
}
