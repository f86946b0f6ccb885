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
    guard let yaml = try Yams.load(yaml: trimmed) else { return .object([:]) }
    return try JSONValue(any: yaml)
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
