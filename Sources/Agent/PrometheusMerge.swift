internal import Foundation

/// The exposition formats of a merged scrape.
package enum MetricsFormat: Equatable, Sendable {
  case text
  /// OpenMetrics `version` (1.0.0 or 0.0.1).
  case openMetrics(String)

  package var contentType: String {
    switch self {
    case .text: "text/plain; version=0.0.4; charset=utf-8"
    case .openMetrics(let version): "application/openmetrics-text; version=\(version); charset=utf-8"
    }
  }

  /// The format a source answered in, from its Content-Type.
  package init(contentType: String?) {
    let value = (contentType ?? "").lowercased()
    guard value.hasPrefix("application/openmetrics-text") else {
      self = .text
      return
    }
    let version = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
      .first { $0.hasPrefix("version=") }.map { String($0.dropFirst("version=".count)) }
    self = .openMetrics(version == "0.0.1" ? "0.0.1" : "1.0.0")
  }
}

/// pilot-agent's merged `/stats/prometheus` (`status/server.go` `handleStats`): Accept filtering per source,
/// concatenation in order (agent, proxy, application), one `# EOF` for OpenMetrics. Unlike Istio, a metric
/// family already written by an earlier source is dropped from later ones, so the output always parses.
package enum PrometheusMerge {
  package static let defaultAccept = "text/plain;version=0.0.4"

  /// The Accept header forwarded to a source: the proxy only gets text types; applications may also get
  /// OpenMetrics. `*`/`*/*` become text 0.0.4, `application/*` OpenMetrics 0.0.1; q-values are kept.
  package static func filteredAccept(_ header: String?, allowOpenMetrics: Bool) -> String {
    guard let header, !header.isEmpty else { return defaultAccept }
    var kept: [String] = []
    for part in header.split(separator: ",") {
      let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
      guard let type = fields.first?.lowercased(), !type.isEmpty else { continue }
      let params = fields.dropFirst()
      let q = params.filter { $0.lowercased().hasPrefix("q=") }
      let others = params.filter { !$0.lowercased().hasPrefix("q=") }
      var media: [String]
      switch type {
      case "*", "*/*": media = ["text/plain", "version=0.0.4"]
      case "text/plain", "text/*": media = [type] + others
      case "application/openmetrics-text" where allowOpenMetrics: media = [type] + others
      case "application/*" where allowOpenMetrics: media = ["application/openmetrics-text", "version=0.0.1"]
      default: continue
      }
      kept.append((media + q).joined(separator: ";"))
    }
    return kept.isEmpty ? defaultAccept : kept.joined(separator: ",")
  }

  /// Concatenates `bodies` in order, dropping every `# EOF`, comment lines other than HELP/TYPE/UNIT, and any
  /// metric family an earlier body already had; appends one `# EOF` for OpenMetrics. Returns the text and the
  /// names of the families dropped as duplicates.
  package static func merge(_ bodies: [String], format: MetricsFormat) -> (text: String, duplicates: [String])
  {
    var seen = Set<String>()
    var duplicates: [String] = []
    var out = ""
    for body in bodies {
      var families = Set<String>()
      var current: String?
      var skipping = false
      func enter(_ family: String) {
        guard family != current else { return }
        current = family
        skipping = seen.contains(family)
        if skipping, !duplicates.contains(family) { duplicates.append(family) }
        families.insert(family)
      }
      for raw in body.split(separator: "\n", omittingEmptySubsequences: true) {
        let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
        if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
        if line.hasPrefix("#") {
          let tokens = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
          guard tokens.count >= 3, ["HELP", "TYPE", "UNIT"].contains(tokens[1]) else { continue }
          enter(String(tokens[2]))
        } else {
          let name = String(line.prefix { $0 != "{" && $0 != " " && $0 != "\t" })
          if let current, belongs(name, to: current) {
            // same family
          } else {
            enter(name)
          }
        }
        if !skipping {
          out += line
          out += "\n"
        }
      }
      seen.formUnion(families)
    }
    if case .openMetrics = format { out += "# EOF\n" }
    return (out, duplicates)
  }

  static let familySuffixes = [
    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum",
  ]

  static func belongs(_ sample: String, to family: String) -> Bool {
    if sample == family { return true }
    guard sample.hasPrefix(family) else { return false }
    return familySuffixes.contains(String(sample.dropFirst(family.count)))
  }
}
