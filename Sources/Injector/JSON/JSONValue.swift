package import OrderedCollections

/// A JSON document with object key order preserved, so a mutated Kubernetes object prints back the way
/// it came in and a JSON Patch between two of them is minimal and stable.
///
/// Numbers keep their source text (`1`, `0.5`, `1e3`): Kubernetes quantities and ports round-trip exactly.
package indirect enum JSONValue: Sendable, Hashable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object(OrderedDictionary<String, JSONValue>)

  package static func int(_ value: Int) -> JSONValue { .number(String(value)) }
  package static var emptyObject: JSONValue { .object([:]) }

  package var objectValue: OrderedDictionary<String, JSONValue>? {
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
  package var intValue: Int? {
    if case .number(let n) = self { return Int(n) }
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
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  package init(stringLiteral value: String) { self = .string(value) }
  package init(booleanLiteral value: Bool) { self = .bool(value) }
  package init(integerLiteral value: Int) { self = .number(String(value)) }
  package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  package init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(OrderedDictionary(elements, uniquingKeysWith: { $1 }))
  }
  package init(nilLiteral: ()) { self = .null }
}
