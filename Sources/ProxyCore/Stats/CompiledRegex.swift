/// A regular expression compiled once from configuration text, matched on Unicode scalars (as RE2 matches
/// code points, not grapheme clusters). Swift `Regex` syntax is close to RE2's and ECMAScript's for the
/// patterns Envoy and Istio configure (groups, lazy quantifiers, `(?=…)`, `\d`, `\w`, POSIX classes).
struct CompiledRegex: @unchecked Sendable {
  // `Regex<AnyRegexOutput>` is immutable once built; the unchecked conformance only covers
  // `AnyRegexOutput` not being declared Sendable.
  let regex: Regex<AnyRegexOutput>
  let pattern: String

  /// - Parameter what: names the regex in the error, e.g. `tag 'cluster_name' regex`.
  init(_ pattern: String, what: String) throws(StatsConfigError) {
    do {
      regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
    } catch {
      throw StatsConfigError(
        code: .invalidRegex, message: "\(what) '\(pattern)' is not a valid regex: \(error)")
    }
    self.pattern = pattern
  }

  /// RE2 `FullMatch`.
  func wholeMatches(_ value: String) -> Bool {
    (try? regex.wholeMatch(in: value)) != nil
  }

  /// RE2 `PartialMatch` / `std::regex_search`.
  func searches(_ value: String) -> Bool {
    (try? regex.firstMatch(in: value)) != nil
  }

  func firstMatch(in value: String) -> Regex<AnyRegexOutput>.Match? {
    try? regex.firstMatch(in: value)
  }
}
