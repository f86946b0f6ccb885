package import EnvoyAPI
package import SwiftProtobuf

/// Extension types the proxy recognises without implementing: Istio's own filters (stats, metadata
/// exchange, ALPN override, authn …). They are accepted and skipped with one warning each, so an Istio
/// configuration is never rejected for them. Any other unknown type is an error naming it.
package enum ExtensionTypes {
  private static let typeURLPrefix = "type.googleapis.com/"
  private static let istioTypePrefixes = [
    "istio.", "io.istio.", "stats.PluginConfig", "envoy.tcp.metadataexchange.",
    "envoy.extensions.filters.http.istio_stats",
    "envoy.extensions.filters.network.metadata_exchange", "envoy.extensions.filters.http.alpn", "istio_authn",
  ]
  private static let typedStructNames: Set<String> = ["xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct"]

  /// The message name of a type URL (`type.googleapis.com/a.b.C` → `a.b.C`).
  package static func messageName(_ typeURL: String) -> String {
    if let slash = typeURL.lastIndex(of: "/") { return String(typeURL[typeURL.index(after: slash)...]) }
    return typeURL
  }

  /// True for the Istio-only types listed above.
  package static func isIstioExtension(_ typeURL: String) -> Bool {
    let name = messageName(typeURL)
    return istioTypePrefixes.contains { name.hasPrefix($0) }
  }

  package static func isTypedStruct(_ typeURL: String) -> Bool {
    typedStructNames.contains(messageName(typeURL))
  }

  /// The type a filter's config really has: the Any's own type, or the `type_url` inside a TypedStruct.
  package static func effectiveTypeURL(_ any: Google_Protobuf_Any) -> String {
    guard isTypedStruct(any.typeURL) else { return any.typeURL }
    // Both TypedStruct messages have the same wire format.
    if let typed = try? Xds_Type_V3_TypedStruct(serializedBytes: any.value) { return typed.typeURL }
    return any.typeURL
  }
}
