internal import Foundation
package import OrderedCollections
internal import Yams

/// Parsing (JSON or YAML, one or many documents) and printing (compact or pretty JSON, YAML).
extension JSONValue {
  package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package var description: String { message }
  }

  /// Parses one JSON or YAML document.
  package static func parse(_ text: String) throws(ParseError) -> JSONValue {
    let documents = try parseDocuments(text)
    guard documents.count == 1 else {
      throw ParseError(message: "expected one document, found \(documents.count)")
    }
    return documents[0]
  }

  /// Parses a stream of YAML documents (`---` separated) or a JSON document. Empty documents are dropped.
  package static func parseDocuments(_ text: String) throws(ParseError) -> [JSONValue] {
    do {
      var result: [JSONValue] = []
      // The sequence is its own iterator and keeps a syntax error on itself instead of throwing it, so it is
      // advanced in place and its error read afterwards.
      var documents = try Yams.compose_all(yaml: text)
      // Yams resolves an alias to its anchor's node, so converting expands every alias: a few hundred
      // bytes of nested aliases ("billion laughs", e.g. in a pod's proxy.istio.io/config annotation) would
      // become billions of values. The conversion may visit at most this many nodes.
      var budget = 16 * text.utf8.count + 1024
      while let node = documents.next() {
        result.append(try JSONValue(node: node, budget: &budget))
      }
      if let error = documents.error { throw ParseError(message: "not valid YAML or JSON: \(error)") }
      return result
    } catch let error as ParseError {
      throw error
    } catch {
      throw ParseError(message: "not valid YAML or JSON: \(error)")
    }
  }

  init(node: Node, budget: inout Int) throws(ParseError) {
    budget -= 1
    guard budget >= 0 else {
      throw ParseError(message: "the document expands to far more values than its size (YAML aliases?)")
    }
    switch node {
    case .scalar(let scalar):
      switch node.tag.description {
      case Tag.Name.null.rawValue: self = .null
      case Tag.Name.bool.rawValue: self = .bool(Bool.construct(from: scalar) ?? false)
      case Tag.Name.int.rawValue, Tag.Name.float.rawValue:
        // Keep the text unless it is not a JSON number (0x1F, .inf): then its value, as JSON has it.
        if let number = Double(scalar.string), number.isFinite, scalar.string.first != "+",
          !scalar.string.lowercased().hasPrefix("0x"), !scalar.string.hasPrefix("0o")
        {
          self = .number(scalar.string)
        } else if let int = Int.construct(from: scalar) {
          self = .number(String(int))
        } else {
          self = .string(scalar.string)
        }
      default: self = .string(scalar.string)
      }
    case .mapping(let mapping):
      var object = OrderedDictionary<String, JSONValue>()
      for (key, value) in mapping {
        guard let name = key.string else { throw ParseError(message: "a mapping key is not a string") }
        object[name] = try JSONValue(node: value, budget: &budget)
      }
      self = .object(object)
    case .sequence(let sequence):
      var array: [JSONValue] = []
      for item in sequence { array.append(try JSONValue(node: item, budget: &budget)) }
      self = .array(array)
    case .alias:
      throw ParseError(message: "YAML aliases are not supported")
    }
  }

  /// Compact JSON.
  package var jsonText: String {
    var out = ""
    write(into: &out, indent: nil, level: 0)
    return out
  }

  /// Indented JSON (two spaces), as kubectl prints it.
  package var prettyJSONText: String {
    var out = ""
    write(into: &out, indent: "  ", level: 0)
    return out
  }

  private func write(into out: inout String, indent: String?, level: Int) {
    func newline(_ depth: Int) {
      guard let indent else { return }
      out += "\n" + String(repeating: indent, count: depth)
    }
    switch self {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .number(let n): out += n
    case .string(let s): out += JSONValue.quote(s)
    case .array(let items):
      if items.isEmpty {
        out += "[]"
        return
      }
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += "," }
        newline(level + 1)
        item.write(into: &out, indent: indent, level: level + 1)
      }
      newline(level)
      out += "]"
    case .object(let object):
      if object.isEmpty {
        out += "{}"
        return
      }
      out += "{"
      for (i, (key, value)) in object.enumerated() {
        if i > 0 { out += "," }
        newline(level + 1)
        out += JSONValue.quote(key) + (indent == nil ? ":" : ": ")
        value.write(into: &out, indent: indent, level: level + 1)
      }
      newline(level)
      out += "}"
    }
  }

  package static func quote(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "<": out += "\\u003c"
      case ">": out += "\\u003e"
      case "&": out += "\\u0026"
      default:
        if scalar.value < 0x20 {
          out += String(format: "\\u%04x", scalar.value)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }

  /// YAML, block style, keys in their order.
  package var yamlText: String {
    (try? Yams.serialize(node: node, indent: 2, width: -1, allowUnicode: true, sortKeys: false)) ?? jsonText
  }

  var node: Node {
    switch self {
    case .null: return Node("null", Tag(.null))
    case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
    case .number(let n): return Node(n, Tag(n.contains(".") || n.contains("e") || n.contains("E") ? .float : .int))
    case .string(let s):
      // Quote a string whose plain form would read back as something else ("15020", "false", "", "null").
      let plainReadsBack = !s.isEmpty && (try? JSONValue.parseDocuments(s)) == [.string(s)]
      return Node(s, Tag(.str), plainReadsBack ? .any : .doubleQuoted)
    case .array(let items): return Node(items.map(\.node))
    case .object(let object): return Node(object.map { (Node($0.key), $0.value.node) })
    }
  }
}
