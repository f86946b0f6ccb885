internal import PilotfishKit

/// Strict YAML reading for manifests.
///
/// Invariant: a stream with a syntax error anywhere is an error naming the document (its 1-based index),
/// never a shorter list of documents.
extension Manifest {
  static func parseYAMLDocuments(_ text: String) throws(ManifestError) -> [JSONValue] {
    do {
      return try JSONValue.parseYAMLDocuments(text)
    } catch {
      let place = error.line > 0 ? " line \(error.line), column \(error.column):" : ""
      throw ManifestError(.unreadable, "document \(error.document):\(place) \(error.message)")
    }
  }
}
