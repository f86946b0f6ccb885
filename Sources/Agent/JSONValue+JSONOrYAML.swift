internal import Foundation
package import PilotfishKit

extension JSONValue {
  /// Parses PROXY_CONFIG, the `proxy.istio.io/config` annotation, a mesh config or a bootstrap override:
  /// strict JSON when the text starts with `{` or `[`, one YAML document otherwise; empty text is an empty
  /// object.
  package static func parse(jsonOrYAML text: String) throws(ParseError) -> JSONValue {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") { return try parseJSON(trimmed) }
    return try parseYAML(trimmed, orIfEmpty: .emptyObject)
  }
}
