package import OrderedCollections

/// A JSON document with object key order preserved, so a mutated Kubernetes object prints back the way it
/// came in, a JSON Patch between two of them is minimal and stable, and validation reports the first bad
/// element as the author sees it.
///
/// Numbers keep their source text (`1`, `0.5`, `1e3`): Kubernetes quantities and ports round-trip exactly,
/// and proto3 JSON keeps 64-bit integers and exact decimals that a `Double` would round.
package indirect enum JSONValue: Sendable, Hashable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object(Object)

  /// An object's members, in document order.
  package typealias Object = OrderedDictionary<String, JSONValue>

  package static func int(_ value: Int) -> JSONValue { .number(String(value)) }
  package static var emptyObject: JSONValue { .object([:]) }

  package var objectValue: Object? {
    if case .object(let o) = self { return o }
    return nil
  }
  package var arrayValue: [JSONValue]? {
    if case .array(let a) = self { return a }
    return nil
  }
  package var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }
  package var boolValue: Bool? {
    if case .bool(let b) = self { return b }
    return nil
  }
  /// The number, if it is written as an integer that fits an `Int`.
  package var intValue: Int? {
    if case .number(let n) = self { return Int(n) }
    return nil
  }
  /// The number as a `Double` (rounded, as any JSON number read into a double).
  package var doubleValue: Double? {
    if case .number(let n) = self { return Double(n) }
    return nil
  }

  /// Member access for objects; nil for anything else or a missing key. Assigning nil removes the key;
  /// assigning to a non-object turns it into an object.
  package subscript(key: String) -> JSONValue? {
    get { objectValue?[key] }
    set {
      var object = objectValue ?? [:]
      object[key] = newValue
      self = .object(object)
    }
  }

  /// Value at a path of object keys, e.g. `pod[path: "metadata", "annotations"]`.
  package subscript(path keys: String...) -> JSONValue? {
    keys.reduce(Optional(self)) { $0?[$1] }
  }

  /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
  /// This is how Istio overlays one ProxyConfig on another.
  package func merged(with patch: JSONValue) -> JSONValue {
    guard case .object(let members) = patch else { return patch }
    var base = objectValue ?? [:]
    for (key, value) in members {
      if value == .null {
        base.removeValue(forKey: key)
      } else {
        base[key] = (base[key] ?? .null).merged(with: value)
      }
    }
    return .object(base)
  }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  package init(stringLiteral value: String) { self = .string(value) }
  package init(booleanLiteral value: Bool) { self = .bool(value) }
  package init(integerLiteral value: Int) { self = .number(String(value)) }
  package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  package init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(Object(elements, uniquingKeysWith: { $1 }))
  }
  package init(nilLiteral: ()) { self = .null }
}
