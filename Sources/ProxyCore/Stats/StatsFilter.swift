/// The admin `?filter=` regex, compiled once per request. As Envoy's, it is a partial match (search) on
/// the stat's full name, before tag extraction.
package struct StatsFilter: Sendable {
  private let regex: CompiledRegex

  /// Throws `.invalidRegex` for text that does not compile; the admin handler answers 400.
  package init(_ text: String) throws(StatsConfigError) {
    regex = try CompiledRegex(text, what: "filter")
  }

  package var pattern: String { regex.pattern }

  package func matches(_ statName: String) -> Bool { regex.searches(statName) }
}
