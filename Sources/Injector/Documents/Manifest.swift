internal import Foundation
package import PilotfishKit

/// A manifest as `kubectl apply -f` reads it: a stream of YAML documents or one JSON document, printed back
/// in the same format.
package struct Manifest: Sendable, Equatable {
  package enum Format: Sendable, Equatable {
    /// `---` separated YAML documents.
    case yaml
    /// One JSON document (printed indented, as kubectl does).
    case json
  }

  package var documents: [JSONValue]
  package var format: Format

  package init(documents: [JSONValue], format: Format) {
    self.documents = documents
    self.format = format
  }

  /// Reads `text`. JSON when the first character that is not white space is `{` or `[`, YAML otherwise.
  /// Empty YAML documents are dropped.
  package init(parsing text: String) throws(ManifestError) {
    let first = text.unicodeScalars.first { !CharacterSet.whitespacesAndNewlines.contains($0) }
    format = first == "{" || first == "[" ? .json : .yaml
    do {
      documents = try Self.parseYAMLDocuments(text)
    } catch {
      throw ManifestError(
        .unreadable, "input is \(format == .json ? "not valid JSON" : "not valid YAML"): \(error.message)")
    }
    if format == .json, documents.count > 1 {
      throw ManifestError(.unreadable, "input holds \(documents.count) JSON documents; use a List or YAML")
    }
  }

  /// The documents in ``format``: YAML documents separated by `---` lines, or indented JSON; ends with a newline.
  package var text: String {
    switch format {
    case .json:
      return documents.map { $0.prettyJSONText + "\n" }.joined()
    case .yaml:
      return documents.map { document in
        let yaml = document.yamlText
        return yaml.hasSuffix("\n") ? yaml : yaml + "\n"
      }.joined(separator: "---\n")
    }
  }
}

extension Manifest {
  /// The text of the file at `path`, or of standard input for `-`.
  package static func readText(from path: String) throws(ManifestError) -> String {
    let data: Data
    if path == "-" {
      data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ManifestError(.unreadable, "cannot read \(path): no such file")
      }
      guard !isDirectory.boolValue else {
        throw ManifestError(.unreadable, "cannot read \(path): it is a directory")
      }
      // A FileHandle also reads pipes and FIFOs (`-f <(...)`, /dev/stdin).
      do {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        data = try handle.readToEnd() ?? Data()
      } catch {
        let reason =
          FileManager.default.isReadableFile(atPath: path)
          ? "\(error.localizedDescription)" : "permission denied"
        throw ManifestError(.unreadable, "cannot read \(path): \(reason)")
      }
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ManifestError(.unreadable, "\(path == "-" ? "standard input" : path) is not UTF-8 text")
    }
    return text
  }

  /// Writes `text` to the file at `path`, or to standard output for nil or `-`.
  package static func write(_ text: String, to path: String?) throws(ManifestError) {
    guard let path, path != "-" else {
      FileHandle.standardOutput.write(Data(text.utf8))
      return
    }
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw ManifestError(.unreadable, "cannot write \(path): \(error.localizedDescription)")
    }
  }
}
