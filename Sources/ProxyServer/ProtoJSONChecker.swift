internal import EnvoyAPI
internal import Foundation
internal import PilotfishKit
internal import SwiftProtobuf

/// Walks a JSON document against a protobuf message type and reports the first problem with its field
/// path — swift-protobuf's own decoder says *what* failed but not *where*. Field kinds are learnt by
/// probing the generated type with one-key documents (`{"k": null}` strictly: is `k` a field at all;
/// `{"k": {}}` / `{"k": [{}]}` / `{"k": {"x": {}}}`: is it a message, repeated message or message map,
/// and of which type), so the walk needs no descriptors. Unknown fields are errors, or warnings when
/// `allowUnknownFields` is set. Leaves are checked by decoding `{"k": value}` into the enclosing type.
struct ProtoJSONChecker {
  var source: String
  var allowUnknownFields: Bool
  /// Unknown fields that were allowed, in document order.
  private(set) var warnings: [BootstrapError] = []

  private enum FieldKind {
    case message(any SwiftProtobuf.Message.Type)
    case repeatedMessage(any SwiftProtobuf.Message.Type)
    case messageMap(any SwiftProtobuf.Message.Type)
    case leaf
  }

  /// Types whose JSON form is not an object of fields; checked by decoding them whole.
  private static let specialJSONTypes: Set<String> = [
    "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.Struct",
    "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
    "google.protobuf.Empty",
  ]

  private static let typedStructTypes: Set<String> = ["xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct"]

  private var knownFieldCache: [String: Bool] = [:]
  private var fieldKindCache: [String: FieldKind] = [:]

  init(source: String, allowUnknownFields: Bool) {
    self.source = source
    self.allowUnknownFields = allowUnknownFields
    EnvoyAPIMessageTypes.registerWithAny()
  }

  mutating func check(
    _ value: JSONValue, as type: any SwiftProtobuf.Message.Type, path: FieldPath
  ) throws(BootstrapError) {
    let name = type.protoMessageName
    if name == Google_Protobuf_Any.protoMessageName {
      return try checkAny(value, path: path)
    }
    if Self.specialJSONTypes.contains(name) {
      return try checkWhole(value, as: type, path: path)
    }
    if case .null = value { return }
    guard case .object(let members) = value else {
      throw error(.invalidValue, path, "expected an object (\(name)), found \(Self.brief(value))")
    }
    for (key, fieldValue) in members {
      let fieldPath = path.appending(key)
      guard isKnownField(key, of: type) else {
        let unknown = error(.unknownField, path, "unknown field \"\(key)\" in \(name)")
        if allowUnknownFields {
          warnings.append(unknown)
          continue
        }
        throw unknown
      }
      if case .null = fieldValue { continue }
      switch fieldKind(key, of: type, sample: fieldValue) {
      case .message(let fieldType):
        try check(fieldValue, as: fieldType, path: fieldPath)
      case .repeatedMessage(let elementType):
        guard case .array(let elements) = fieldValue else {
          try checkLeaf(key, fieldValue, in: type, path: fieldPath)
          continue
        }
        for (i, element) in elements.enumerated() {
          try check(element, as: elementType, path: fieldPath.appending(index: i))
        }
      case .messageMap(let valueType):
        guard case .object(let entries) = fieldValue else {
          try checkLeaf(key, fieldValue, in: type, path: fieldPath)
          continue
        }
        for (entryKey, entry) in entries {
          try check(entry, as: valueType, path: fieldPath.appending(key: entryKey))
        }
      case .leaf:
        try checkLeaf(key, fieldValue, in: type, path: fieldPath)
      }
    }
  }

  // MARK: Any

  private mutating func checkAny(_ value: JSONValue, path: FieldPath) throws(BootstrapError) {
    if case .null = value { return }
    guard case .object(let members) = value else {
      throw error(.invalidValue, path, "expected an object with \"@type\", found \(Self.brief(value))")
    }
    if members.isEmpty { return }
    guard case .string(let typeURL)? = value["@type"] else {
      throw error(.invalidValue, path, "missing \"@type\"")
    }
    let (parent, field) = path.splitLastField ?? (path, "Any")
    guard let messageType = Google_Protobuf_Any.messageType(forTypeURL: typeURL) else {
      throw error(.unknownType, parent, "unknown \(field) type \"\(typeURL)\"")
    }
    let content = JSONValue.object(members.filter { $0.key != "@type" })
    if Self.specialJSONTypes.contains(messageType.protoMessageName) {
      try check(content["value"] ?? .null, as: messageType, path: path.appending("value"))
      return
    }
    try check(content, as: messageType, path: path)
    if Self.typedStructTypes.contains(messageType.protoMessageName),
      case .string(let innerURL)? = content["type_url"] ?? content["typeUrl"],
      let innerType = Google_Protobuf_Any.messageType(forTypeURL: innerURL),
      let inner = content["value"]
    {
      // A TypedStruct wrapping a type we know: its value must be that message in JSON form.
      try check(inner, as: innerType, path: path.appending("value"))
    }
  }

  // MARK: Leaves

  private func checkWhole(
    _ value: JSONValue, as type: any SwiftProtobuf.Message.Type, path: FieldPath
  ) throws(BootstrapError) {
    do {
      _ = try type.init(jsonString: value.jsonText(pretty: false, escapingHTML: false))
    } catch {
      throw self.error(
        .invalidValue, path,
        "invalid \(type.protoMessageName) value \(Self.brief(value)) (\(Self.reason(error)))")
    }
  }

  private func checkLeaf(
    _ key: String, _ value: JSONValue, in type: any SwiftProtobuf.Message.Type, path: FieldPath
  ) throws(BootstrapError) {
    let probe = JSONValue.object([key: value])
    do {
      // Strict: lenient decoding would also drop unknown enum names.
      _ = try type.init(jsonString: probe.jsonText(pretty: false, escapingHTML: false))
    } catch JSONDecodingError.unknownField where allowUnknownFields {
      return
    } catch {
      throw self.error(.invalidValue, path, "invalid value \(Self.brief(value)) (\(Self.reason(error)))")
    }
  }

  // MARK: Probing

  private static let lenient: JSONDecodingOptions = {
    var options = JSONDecodingOptions()
    options.ignoreUnknownFields = true
    return options
  }()

  private mutating func isKnownField(_ key: String, of type: any SwiftProtobuf.Message.Type) -> Bool {
    let cacheKey = type.protoMessageName + "\u{0}" + key
    if let known = knownFieldCache[cacheKey] { return known }
    let probe = JSONValue.object([key: .null]).jsonText(pretty: false, escapingHTML: false)
    let known: Bool
    do {
      _ = try type.init(jsonString: probe)
      known = true
    } catch JSONDecodingError.unknownField {
      known = false
    } catch {
      known = true
    }
    knownFieldCache[cacheKey] = known
    return known
  }

  private mutating func fieldKind(
    _ key: String, of type: any SwiftProtobuf.Message.Type, sample: JSONValue
  ) -> FieldKind {
    let category: String
    switch sample {
    case .object(let members): category = members.isEmpty ? "{}" : "{:}"
    case .array: category = "[]"
    default: category = "-"
    }
    let cacheKey = type.protoMessageName + "\u{0}" + key + "\u{0}" + category
    if let kind = fieldKindCache[cacheKey] { return kind }
    let kind = Self.probeFieldKind(key, of: type, sample: sample)
    fieldKindCache[cacheKey] = kind
    return kind
  }

  private static func probeFieldKind(
    _ key: String, of type: any SwiftProtobuf.Message.Type, sample: JSONValue
  ) -> FieldKind {
    switch sample {
    case .object(let members):
      if let found = probe(type, JSONValue.object([key: .object([:])])), case .singular(let t) = found {
        return .message(t)
      }
      if let firstKey = members.keys.first,
        let found = Self.probe(type, JSONValue.object([key: .object([firstKey: .object([:])])])),
        case .map(let t) = found
      {
        return .messageMap(t)
      }
      return .leaf
    case .array:
      if let found = probe(type, JSONValue.object([key: .array([.object([:])])])),
        case .repeated(let t) = found
      {
        return .repeatedMessage(t)
      }
      return .leaf
    default:
      return .leaf
    }
  }

  private static func probe(_ type: any SwiftProtobuf.Message.Type, _ json: JSONValue) -> FieldTypeCapture
    .Found?
  {
    guard
      let message = try? type.init(
        jsonString: json.jsonText(pretty: false, escapingHTML: false), options: lenient)
    else { return nil }
    var capture = FieldTypeCapture()
    try? message.traverse(visitor: &capture)
    return capture.found
  }

  // MARK: Messages

  private func error(_ code: BootstrapError.Code, _ path: FieldPath, _ message: String) -> BootstrapError {
    BootstrapError(code: code, source: source, path: path.description, message: message)
  }

  static func brief(_ value: JSONValue) -> String {
    switch value {
    case .object: return "an object"
    case .array: return "a list"
    case .null: return "null"
    default:
      let text = value.jsonText(pretty: false, escapingHTML: false)
      return text.count > 60 ? String(text.prefix(57)) + "..." : text
    }
  }

  static func reason(_ error: any Error) -> String {
    switch error {
    case JSONDecodingError.malformedDuration: return "not a duration such as \"1.5s\""
    case JSONDecodingError.malformedTimestamp: return "not an RFC 3339 timestamp"
    case JSONDecodingError.unrecognizedEnumValue: return "unknown enum value"
    case JSONDecodingError.numberRange: return "number out of range"
    case JSONDecodingError.malformedNumber: return "not a number"
    case JSONDecodingError.malformedBool: return "not a bool"
    case JSONDecodingError.malformedString: return "not a string"
    case JSONDecodingError.unquotedMapKey, JSONDecodingError.malformedMap: return "not a map"
    case JSONDecodingError.conflictingOneOf: return "more than one field of a oneof is set"
    default: return "\(error)"
    }
  }
}

/// Records the type of the (single) message-typed field a probe message has set.
private struct FieldTypeCapture: SwiftProtobuf.Visitor {
  enum Found {
    case singular(any SwiftProtobuf.Message.Type)
    case repeated(any SwiftProtobuf.Message.Type)
    case map(any SwiftProtobuf.Message.Type)
  }

  var found: Found?

  mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
    found = .singular(M.self)
  }
  mutating func visitRepeatedMessageField<M: SwiftProtobuf.Message>(value: [M], fieldNumber: Int) throws {
    found = .repeated(M.self)
  }
  mutating func visitMapField<KeyType, ValueType>(
    fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
    value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
    fieldNumber: Int
  ) throws {
    found = .map(ValueType.self)
  }
  mutating func visitMapField<KeyType, ValueType: MapValueType>(
    fieldType: _ProtobufMap<KeyType, ValueType>.Type,
    value: _ProtobufMap<KeyType, ValueType>.BaseType,
    fieldNumber: Int
  ) throws {}
  mutating func visitMapField<KeyType, ValueType>(
    fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type,
    value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
    fieldNumber: Int
  ) throws where ValueType.RawValue == Int {}
  mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {}
  mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {}
  mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {}
  mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}
  mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {}
  mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {}
  mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws {}
  mutating func visitUnknown(bytes: Data) throws {}
}
