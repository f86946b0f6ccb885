internal import Yams

/// YAML (which includes JSON) to ``JSONValue`` and back, the way Kubernetes and Envoy read YAML before
/// their JSON decoders.
///
/// Invariants: plain scalars resolve per YAML's core schema (null, bool, int, float), quoted scalars stay
/// strings; numbers keep the author's spelling where it is valid JSON (`1e3`), otherwise their value
/// (`0x1F` → `31`, `+1` → `1`), NaN and infinities become the strings proto3 JSON accepts; merge keys
/// (`<<`) apply, explicit keys winning; a key written twice in one mapping, or a key that is not a scalar,
/// is an error (as kubectl's YAML reader has it); nesting deeper than ``maxDepth`` is an error. Yams
/// resolves an alias to its anchor's node, so converting expands every alias: a few hundred bytes of
/// nested aliases ("billion laughs", e.g. in a pod's `proxy.istio.io/config` annotation or in
/// ISTIO_BOOTSTRAP_OVERRIDE) would become billions of values. The conversion of a stream may visit at most
/// 16 nodes per input byte (plus 1024).
extension JSONValue {
  /// Parses exactly one YAML (or JSON) document; a text without any (empty, or only comments) is `empty`
  /// when given, an error otherwise.
  package static func parseYAML(_ text: String, orIfEmpty empty: JSONValue? = nil) throws(ParseError)
    -> JSONValue
  {
    let documents = try parseYAMLDocuments(text)
    if documents.isEmpty, let empty { return empty }
    guard documents.count == 1 else {
      throw ParseError(.yaml, "expected one document, found \(documents.count)")
    }
    return documents[0]
  }

  /// Parses a stream of YAML documents (`---` separated; a JSON document is one). A syntax error anywhere
  /// is an error naming its document, never a shorter list.
  package static func parseYAMLDocuments(_ text: String) throws(ParseError) -> [JSONValue] {
    var documents: [JSONValue] = []
    do {
      let parser = try Parser(yaml: text)
      var converter = YAMLConverter(budget: 16 * text.utf8.count + 1024)
      while let node = try parser.nextRoot() {
        documents.append(try converter.convert(node, depth: 0))
      }
    } catch var error as ParseError {
      error.document = documents.count + 1
      throw error
    } catch let error as YamlError {
      throw syntaxError(error, document: documents.count + 1)
    } catch {
      throw ParseError(.yaml, "\(error)", document: documents.count + 1)
    }
    return documents
  }

  private static func syntaxError(_ error: YamlError, document: Int) -> ParseError {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let prefix = context.map { $0.text + ": " } ?? ""
      return ParseError(.yaml, prefix + problem, line: mark.line, column: mark.column, document: document)
    default:
      let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
      return ParseError(.yaml, firstLine, document: document)
    }
  }

  /// YAML, block style, keys in their order; strings that would read back as something else are quoted.
  package var yamlText: String {
    (try? Yams.serialize(node: node, indent: 2, width: -1, allowUnicode: true, sortKeys: false)) ?? jsonText
  }

  private var node: Node {
    switch self {
    case .null: return Node("null", Tag(.null))
    case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
    case .number(let n):
      return Node(n, Tag(n.contains(".") || n.contains("e") || n.contains("E") ? .float : .int))
    case .string(let s):
      // Quote a string whose plain form would read back as something else ("15020", "false", "", "null").
      let plainReadsBack = !s.isEmpty && (try? JSONValue.parseYAMLDocuments(s)) == [.string(s)]
      return Node(s, Tag(.str), plainReadsBack ? .any : .doubleQuoted)
    case .array(let items): return Node(items.map(\.node))
    case .object(let object): return Node(object.map { (Node($0.key), $0.value.node) })
    }
  }
}

private struct YAMLConverter {
  /// Nodes the conversion may still visit.
  var budget: Int

  mutating func convert(_ node: Node, depth: Int) throws(JSONValue.ParseError) -> JSONValue {
    guard depth < JSONValue.maxDepth else {
      throw JSONValue.ParseError(.yaml, "nested deeper than \(JSONValue.maxDepth) levels")
    }
    budget -= 1
    guard budget >= 0 else {
      throw JSONValue.ParseError(
        .yaml, "the document expands to far more values than its size (YAML aliases?)")
    }
    switch node {
    case .mapping(let mapping):
      var object = JSONValue.Object()
      var explicit = Set<String>()
      for (key, value) in mapping {
        guard case .scalar(let keyScalar) = key else {
          throw JSONValue.ParseError(
            .yaml, "a mapping key is not a string", line: key.mark?.line ?? 0,
            column: key.mark?.column ?? 0)
        }
        if keyScalar.style == .plain, keyScalar.string == "<<" {
          // Merge key: the mapping's (or, from a list, the first mapping's) entries where no key is explicit.
          let merged = try convert(value, depth: depth + 1)
          let sources: [JSONValue]
          if case .array(let list) = merged { sources = list } else { sources = [merged] }
          var taken = Set<String>()
          for case .object(let inner) in sources {
            for (k, v) in inner where !explicit.contains(k) && !taken.contains(k) {
              object[k] = v
              taken.insert(k)
            }
          }
          continue
        }
        guard explicit.insert(keyScalar.string).inserted else {
          throw JSONValue.ParseError(
            .yaml, "duplicate key \(JSONValue.quote(keyScalar.string, escapingHTML: false))",
            line: key.mark?.line ?? 0, column: key.mark?.column ?? 0)
        }
        object[keyScalar.string] = try convert(value, depth: depth + 1)
      }
      return .object(object)
    case .sequence(let sequence):
      var array: [JSONValue] = []
      for element in sequence { array.append(try convert(element, depth: depth + 1)) }
      return .array(array)
    case .scalar(let scalar):
      if scalar.style != .plain { return .string(scalar.string) }
      switch Tag.Name(rawValue: node.tag.rawValue) {
      case .null: return .null
      case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
      case .int:
        if Self.isJSONNumber(scalar.string) { return .number(scalar.string) }
        if let i = node.int { return .number(String(i)) }
        return .string(scalar.string)
      case .float:
        guard let d = node.float else { return .string(scalar.string) }
        if d.isNaN { return .string("NaN") }
        if d.isInfinite { return .string(d < 0 ? "-Infinity" : "Infinity") }
        // Keep the author's spelling where it is already valid JSON.
        return .number(Self.isJSONNumber(scalar.string) ? scalar.string : String(d))
      default: return .string(scalar.string)
      }
    case .alias:
      // Yams resolves aliases while composing; an unresolved one is an error in the document.
      throw JSONValue.ParseError(.yaml, "unresolved YAML alias")
    }
  }

  static func isJSONNumber(_ text: String) -> Bool {
    if case .number? = try? JSONValue.parseJSON(text) { return true }
    return false
  }
}
