internal import PilotfishKit
internal import ProxyCore

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
