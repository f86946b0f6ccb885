internal import Foundation
internal import Yams

/// A JSON value with value semantics, used for ProxyConfig layers and node metadata.
package enum JSONValue: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  package subscript(key: String) -> JSONValue? {
    if case .object(let o) = self { return o[key] }
    return nil
  }

  package var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  package var objectValue: [String: JSONValue]? {
    if case .object(let o) = self { return o }
    return nil
  }

  /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
  /// This is how Istio overlays one ProxyConfig on another.
  package func merged(with patch: JSONValue) -> JSONValue {
    guard case .object(let p) = patch else { return patch }
    var base: [String: JSONValue] = self.objectValue ?? [:]
    for (k, v) in p {
      if v == .null {
        base.removeValue(forKey: k)
      } else {
        base[k] = (base[k] ?? .null).merged(with: v)
      }
    }
    return .object(base)
  }

  /// Parses JSON or YAML text (PROXY_CONFIG and the proxy.istio.io/config annotation accept both).
  package static func parse(jsonOrYAML text: String) throws -> JSONValue {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.isEmpty { return .object([:]) }
    if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
      let object = try JSONSerialization.jsonObject(
        with: Data(trimmed.utf8), options: [.fragmentsAllowed])
      return try JSONValue(any: object)
    }
    guard let root = try Yams.compose(yaml: trimmed) else { return .object([:]) }
    // Yams resolves an alias to its anchor's node, so converting expands every alias: a few hundred bytes
    // of nested aliases ("billion laughs", e.g. in a pod's proxy.istio.io/config annotation) would become
    // billions of values. The conversion may visit at most this many nodes.
    var budget = 16 * trimmed.utf8.count + 1024
    return try JSONValue(yaml: root, budget: &budget)
  }

  /// A YAML node as JSON, per YAML's core schema (plain scalars resolve to null, bool, int or float),
  /// merge keys (`<<`) applied; each node visited costs one unit of `budget`.
  init(yaml node: Node, budget: inout Int, depth: Int = 0) throws {
    budget -= 1
    guard budget >= 0, depth < 512 else {
      throw UnsupportedValue(
        description: "the YAML document expands to far more values than its size (aliases?) or nests too deep"
      )
    }
    switch node {
    case .scalar(let scalar):
      switch Tag.Name(rawValue: node.tag.rawValue) {
      case .null: self = .null
      case .bool: self = node.bool.map(JSONValue.bool) ?? .string(scalar.string)
      case .int:
        self =
          node.int.map { .number(Double($0)) } ?? node.float.map(JSONValue.number) ?? .string(scalar.string)
      case .float: self = node.float.map(JSONValue.number) ?? .string(scalar.string)
      default: self = .string(scalar.string)
      }
    case .mapping(let mapping):
      var object: [String: JSONValue] = [:]
      for (key, value) in mapping {
        let converted = try JSONValue(yaml: value, budget: &budget, depth: depth + 1)
        if key.scalar?.string == "<<" {
          // Merge key: the mapping's (or mappings') entries, explicit keys win.
          let sources: [JSONValue]
          if case .array(let list) = converted { sources = list } else { sources = [converted] }
          for case .object(let inner) in sources {
            for (k, v) in inner where object[k] == nil { object[k] = v }
          }
          continue
        }
        object[key.string ?? key.scalar?.string ?? "\(key)"] = converted
      }
      self = .object(object)
    case .sequence(let sequence):
      self = .array(try sequence.map { try JSONValue(yaml: $0, budget: &budget, depth: depth + 1) })
    case .alias:
      throw UnsupportedValue(description: "unresolved YAML alias")
    }
  }

  static func parseJSON(_ data: Data) throws -> JSONValue {
    try JSONValue(any: JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
  }

  struct UnsupportedValue: Error, CustomStringConvertible {
    var description: String
  }

  init(any value: Any) throws {
    switch value {
    case is NSNull: self = .null
    case let b as Bool where type(of: value) == Bool.self: self = .bool(b)
    case let i as Int where type(of: value) == Int.self: self = .number(Double(i))
    case let d as Double where type(of: value) == Double.self: self = .number(d)
    case let n as NSNumber:
      let kind = String(cString: n.objCType)
      self = kind == "c" || kind == "B" ? .bool(n.boolValue) : .number(n.doubleValue)
    case let s as String: self = .string(s)
    case let a as [Any]: self = .array(try a.map { try JSONValue(any: $0) })
    case let o as [String: Any]: self = .object(try o.mapValues { try JSONValue(any: $0) })
    case let o as [AnyHashable: Any]:
      var out: [String: JSONValue] = [:]
      for (k, v) in o { out["\(k)"] = try JSONValue(any: v) }
      self = .object(out)
    case let d as Date: self = .string(ISO8601DateFormatter().string(from: d))
    default: throw UnsupportedValue(description: "unsupported value \(value)")
    }
  }

  /// Foundation representation, for JSONSerialization.
  var foundation: Any {
    switch self {
    case .null: return NSNull()
    case .bool(let b): return b
    case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? Int(d) as Any : d
    case .string(let s): return s
    case .array(let a): return a.map(\.foundation)
    case .object(let o): return o.mapValues(\.foundation)
    }
  }
}
