package import EnvoyAPI
internal import SwiftProtobuf

/// The bootstrap's static runtime layers (`layered_runtime`), flattened: later layers win, nested structs
/// become dotted keys. Only what the proxy reads is looked up (connection limits).
package struct RuntimeValues: Sendable {
  private var values: [String: Google_Protobuf_Value] = [:]

  package init(_ runtime: Envoy_Config_Bootstrap_V3_LayeredRuntime) {
    for layer in runtime.layers {
      guard case .staticLayer(let layer)? = layer.layerSpecifier else { continue }
      flatten(layer, prefix: "")
    }
  }

  private mutating func flatten(_ object: Google_Protobuf_Struct, prefix: String) {
    for (key, value) in object.fields {
      let name = prefix.isEmpty ? key : prefix + "." + key
      if case .structValue(let nested)? = value.kind {
        flatten(nested, prefix: name)
      } else {
        values[name] = value
      }
    }
  }

  /// A non-negative integer given as a number or a string (Istio writes "2147483647").
  package func integer(_ key: String) -> Int? {
    switch values[key]?.kind {
    case .numberValue(let n)? where n >= 0 && n < 9.2e18: return Int(n)
    case .stringValue(let s)?: return Int(s).flatMap { $0 >= 0 ? $0 : nil }
    default: return nil
    }
  }
}
