/// Envoy's `envoy.type.matcher.v3.StringMatcher`, validated and compiled once. Used by the stats
/// matcher, routes and SAN checks.
///
/// `ignoreCase` folds ASCII letters only (as `absl::EqualsIgnoreCase`) and, as in Envoy, has no effect on
/// `safeRegex`, which must match the whole value.
package struct StringMatcher: Sendable {
  package enum Pattern: Sendable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case contains(String)
    case safeRegex(String)
  }

  package var pattern: Pattern {
    didSet { compiled = try? pattern.compiledRegex() }
  }
  package var ignoreCase: Bool
  private var compiled: CompiledRegex?

  /// Throws for what Envoy's proto validation rejects: an empty `prefix`, `suffix` or `contains`, and a
  /// regex that does not compile.
  package init(_ pattern: Pattern, ignoreCase: Bool = false) throws(StatsConfigError) {
    switch pattern {
    case .prefix(let s) where s.isEmpty, .suffix(let s) where s.isEmpty, .contains(let s) where s.isEmpty:
      throw StatsConfigError(
        .invalidMatcher, "string matcher: \(pattern.kind) must not be empty")
    default: break
    }
    self.pattern = pattern
    self.ignoreCase = ignoreCase
    self.compiled = try pattern.compiledRegex()
  }

  package func matches(_ value: String) -> Bool {
    switch pattern {
    case .exact(let s):
      return ignoreCase ? ASCIIFold.equal(value.utf8, s.utf8) : value == s
    case .prefix(let s):
      return ignoreCase ? ASCIIFold.hasPrefix(value.utf8, s.utf8) : value.utf8.starts(with: s.utf8)
    case .suffix(let s):
      return ignoreCase
        ? ASCIIFold.hasPrefix(value.utf8.reversed(), s.utf8.reversed())
        : value.utf8.reversed().starts(with: s.utf8.reversed())
    case .contains(let s):
      return ASCIIFold.contains(Array(value.utf8), Array(s.utf8), ignoreCase: ignoreCase)
    case .safeRegex:
      return compiled?.wholeMatches(value) ?? false
    }
  }
}

extension StringMatcher.Pattern {
  var kind: String {
    switch self {
    case .exact: "exact"
    case .prefix: "prefix"
    case .suffix: "suffix"
    case .contains: "contains"
    case .safeRegex: "safe_regex"
    }
  }

  fileprivate func compiledRegex() throws(StatsConfigError) -> CompiledRegex? {
    guard case .safeRegex(let text) = self else { return nil }
    return try CompiledRegex(text, what: "string matcher safe_regex")
  }
}

/// Byte-wise comparisons that fold ASCII `A`–`Z` to lower case.
enum ASCIIFold {
  @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }

  static func equal<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { lower($0) == lower($1) }
  }

  static func hasPrefix<A: Sequence<UInt8>, B: Sequence<UInt8>>(_ a: A, _ prefix: B) -> Bool {
    var it = a.makeIterator()
    for p in prefix {
      guard let c = it.next(), lower(c) == lower(p) else { return false }
    }
    return true
  }

  static func contains(_ hay: [UInt8], _ needle: [UInt8], ignoreCase: Bool) -> Bool {
    if needle.isEmpty { return true }
    guard hay.count >= needle.count else { return false }
    for start in 0...(hay.count - needle.count) {
      var i = 0
      while i < needle.count,
        ignoreCase ? lower(hay[start + i]) == lower(needle[i]) : hay[start + i] == needle[i]
      {
        i += 1
      }
      if i == needle.count { return true }
    }
    return false
  }
}
