internal import Foundation
internal import Yams

/// Strict YAML reading for manifests.
///
/// Invariant: a stream with a syntax error anywhere is an error naming the document (its 1-based index),
/// never a shorter list of documents.
extension Manifest {
  static func parseYAMLDocuments(_ text: String) throws(ManifestError) -> [JSONValue] {
    var documents: [JSONValue] = []
    do {
      let parser = try Parser(yaml: text)
      // Aliases expand on conversion: bounded as in `JSONValue.parseDocuments`.
      var budget = 16 * text.utf8.count + 1024
      while let node = try parser.nextRoot() {
        documents.append(try JSONValue(node: node, budget: &budget))
      }
    } catch let error as JSONValue.ParseError {
      throw ManifestError(.unreadable, "document \(documents.count + 1): \(error.message)")
    } catch {
      throw ManifestError(.unreadable, "document \(documents.count + 1): \(oneLine(error))")
    }
    return documents
  }

  /// A parser error on one line: Yams ends its messages with the offending line and a caret under it.
  static func oneLine(_ error: any Error) -> String {
    let lines = "\(error)".split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    var kept: [String] = []
    for line in lines {
      kept.append(line)
      if line.hasSuffix(":") { break }
    }
    var text = kept.joined(separator: " ")
    if text.hasSuffix(":") { text.removeLast() }
    for stage in ["reader", "scanner", "parser", "composer", "emitter"] {
      text = text.replacingOccurrences(of: "error: \(stage): ", with: "")
    }
    return text
  }
}
