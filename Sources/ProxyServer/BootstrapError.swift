/// Why a bootstrap (or a command-line override of it) was rejected. `description` is the text printed to
/// the operator: `<source>: <field path>: <message>`. Equality compares everything shown.
package struct BootstrapError: Error, Equatable, Sendable, CustomStringConvertible {
  package enum Code: Equatable, Sendable {
    /// The file could not be read.
    case unreadable
    /// JSON or YAML syntax.
    case syntax
    /// A key the message type does not have.
    case unknownField
    /// An `Any` whose `@type` is not a known type.
    case unknownType
    /// A value of the wrong JSON type or format (bad duration, enum name, number …).
    case invalidValue
    /// A semantic rule (names, references, addresses).
    case invalidConfig
  }

  package var code: Code
  /// The file path as given on the command line, or `--config-yaml`.
  package var source: String
  /// The field path, e.g. `static_resources.listeners[1].filter_chains[0]`; empty for the whole document.
  package var path: String
  package var message: String

  package init(code: Code, source: String, path: String, message: String) {
    self.code = code
    self.source = source
    self.path = path
    self.message = message
  }

  package var description: String {
    path.isEmpty ? "\(source): \(message)" : "\(source): \(path): \(message)"
  }
}

/// A path into a JSON document, rendered as `a.b[2].c["key"]`.
package struct FieldPath: Sendable, Equatable, CustomStringConvertible {
  package enum Component: Sendable, Equatable {
    case field(String)
    case index(Int)
    case key(String)
  }

  package var components: [Component] = []

  package init(_ components: [Component] = []) { self.components = components }

  package func appending(_ field: String) -> FieldPath { FieldPath(components + [.field(field)]) }
  package func appending(index: Int) -> FieldPath { FieldPath(components + [.index(index)]) }
  package func appending(key: String) -> FieldPath { FieldPath(components + [.key(key)]) }

  /// The path without its last field name (and any indices after it), and that field name.
  package var splitLastField: (parent: FieldPath, field: String)? {
    guard let i = components.lastIndex(where: { if case .field = $0 { true } else { false } }),
      case .field(let name) = components[i]
    else { return nil }
    return (FieldPath(Array(components[..<i])), name)
  }

  package var description: String {
    var out = ""
    for component in components {
      switch component {
      case .field(let name): out += out.isEmpty ? name : "." + name
      case .index(let i): out += "[\(i)]"
      case .key(let k): out += "[\"\(k)\"]"
      }
    }
    return out
  }
}
