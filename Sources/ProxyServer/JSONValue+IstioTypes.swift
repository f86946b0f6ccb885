internal import EnvoyAPI
internal import PilotfishKit
internal import ProxyCore
internal import SwiftProtobuf

extension JSONValue {
  /// Rewrites every `Any` whose `@type` is one of Istio's own extension types (`stats.PluginConfig`,
  /// `io.istio.…`) into a `udpa.type.v1.TypedStruct` carrying the original type URL, so the bootstrap decodes
  /// and the proxy can skip those filters with a warning instead of rejecting the whole configuration.
  func wrappingIstioExtensionTypes() -> JSONValue {
    switch self {
    case .object(let members):
      if case .string(let typeURL)? = self["@type"], ExtensionTypes.isIstioExtension(typeURL),
        !ExtensionTypes.isTypedStruct(typeURL)
      {
        let value = JSONValue.object(members.filter { $0.key != "@type" })
        return .object([
          "@type": .string("type.googleapis.com/udpa.type.v1.TypedStruct"), "type_url": .string(typeURL),
          "value": value,
        ])
      }
      return .object(members.mapValues { $0.wrappingIstioExtensionTypes() })
    case .array(let elements):
      return .array(elements.map { $0.wrappingIstioExtensionTypes() })
    case .string, .number, .bool, .null:
      return self
    }
  }
}

extension JSONValue {
  /// Removes every `Any` (a member or an array element) whose `@type` the proto subset does not know, adding
  /// its path to `dropped`: what binary xDS decoding would keep as opaque bytes and the proxy never reads.
  /// Used where unknown fields are allowed (xDS resources read from files), never for a bootstrap.
  func droppingUnknownAnys(path: String, dropped: inout [String]) -> JSONValue {
    switch self {
    case .object(let members):
      var kept = members
      for (key, value) in members {
        let child = path.isEmpty ? key : "\(path).\(key)"
        if value.isUnknownAny {
          kept[key] = nil
          dropped.append(child)
        } else {
          kept[key] = value.droppingUnknownAnys(path: child, dropped: &dropped)
        }
      }
      return .object(kept)
    case .array(let elements):
      var kept: [JSONValue] = []
      for (i, element) in elements.enumerated() {
        if element.isUnknownAny {
          dropped.append("\(path)[\(i)]")
        } else {
          kept.append(element.droppingUnknownAnys(path: "\(path)[\(i)]", dropped: &dropped))
        }
      }
      return .array(kept)
    case .string, .number, .bool, .null:
      return self
    }
  }

  private var isUnknownAny: Bool {
    guard case .string(let typeURL)? = self["@type"] else { return false }
    return Google_Protobuf_Any.messageType(forTypeURL: typeURL) == nil
  }
}
