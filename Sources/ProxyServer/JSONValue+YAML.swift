internal import Yams

extension JSONValue {
  /// Parses one YAML document and converts it to JSON the way Envoy does before proto3 JSON decoding:
  /// plain scalars resolve to null/bool/int/float per YAML's core schema, quoted scalars stay strings,
  /// mapping keys become strings, key order is kept.
  package static func parseYAML(_ text: String) throws(JSONSyntaxError) -> JSONValue {
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw Self.syntaxError(error)
    } catch {
      throw JSONSyntaxError(line: 0, column: 0, message: "\(error)")
    }
    guard let root else { return .object([]) }
    // Yams resolves an alias to its anchor's node, so converting expands every alias: a few hundred bytes
    // of nested aliases ("billion laughs", e.g. in ISTIO_BOOTSTRAP_OVERRIDE) would become billions of
    // values. The conversion may visit at most this many nodes.
    var budget = 16 * text.utf8.count + 1024
    return try convert(root, depth: 0, budget: &budget)
  }

  private static func syntaxError(_ error: YamlError) -> JSONSyntaxError {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let prefix = context.map { $0.text + ": " } ?? ""
      return JSONSyntaxError(line: mark.line, column: mark.column, message: prefix + problem)
    default:
      let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
      return JSONSyntaxError(line: 0, column: 0, message: firstLine)
    }
  }

  private static func convert(_ node: Node, depth: Int, budget: inout Int) throws(JSONSyntaxError)
    -> JSONValue
  {
    guard depth < 512 else { throw JSONSyntaxError(line: 0, column: 0, message: "nesting too deep") }
    budget -= 1
    guard budget >= 0 else {
      throw JSONSyntaxError(
        line: 0, column: 0, message: "the document expands to far more values than its size (YAML aliases?)")
    }
    switch node {
    case .mapping(let mapping):
      var members: [(key: String, value: JSONValue)] = []
      for (key, value) in mapping {
        if key.scalar?.string == "<<" {
          // Merge key: the mapping's (or mappings') entries come first, explicit keys override.
          let merged = try convert(value, depth: depth + 1, budget: &budget)
          let sources: [JSONValue]
          if case .array(let list) = merged { sources = list } else { sources = [merged] }
          for case .object(let inner) in sources {
            for member in inner where !members.contains(where: { $0.key == member.key }) {
              members.append(member)
            }
          }
          continue
        }
        let keyText = key.scalar?.string ?? key.string ?? ""
        members.removeAll { $0.key == keyText }
        members.append((keyText, try convert(value, depth: depth + 1, budget: &budget)))
      }
      return .object(members)
    case .sequence(let sequence):
      var elements: [JSONValue] = []
      for element in sequence { elements.append(try convert(element, depth: depth + 1, budget: &budget)) }
      return .array(elements)
    case .scalar(let scalar):
      if scalar.style != .plain { return .string(scalar.string) }
      switch Tag.Name(rawValue: node.tag.rawValue) {
      case .null: return .null
      case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
      case .int:
        if let i = node.int { return .number(String(i)) }
        return .string(scalar.string)
      case .float:
        if let d = node.float {
          if d.isNaN { return .string("NaN") }
          if d.isInfinite { return .string(d < 0 ? "-Infinity" : "Infinity") }
          // Keep the author's spelling where it is already valid JSON.
          if (try? JSONValue.parse(scalar.string)) != nil { return .number(scalar.string) }
          return .number(String(d))
        }
        return .string(scalar.string)
      default: return .string(scalar.string)
      }
    case .alias:
      // Yams resolves aliases while composing; an unresolved one is an error in the document.
      throw JSONSyntaxError(line: 0, column: 0, message: "unresolved YAML alias")
    }
  }
}
