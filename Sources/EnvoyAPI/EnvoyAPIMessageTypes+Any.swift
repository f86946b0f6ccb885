package import SwiftProtobuf

extension EnvoyAPIMessageTypes {
  /// Registers every EnvoyAPI message type with `Google_Protobuf_Any`, so that JSON coding of an `Any`
  /// (`{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", ...}`) and
  /// `Google_Protobuf_Any.messageType(forTypeURL:)` know them. Idempotent and thread-safe: call it before
  /// reading or writing JSON (bootstrap files, /config_dump). Binary coding needs no registration.
  package static func registerWithAny() {
    _ = registration
  }

  private static let registration: Bool = {
    for type in all {
      Google_Protobuf_Any.register(messageType: type)
    }
    return true
  }()

  /// The type URL Envoy uses for a message in an `Any` and in xDS `type_url` fields.
  package static func typeURL(of type: any SwiftProtobuf.Message.Type) -> String {
    "type.googleapis.com/" + type.protoMessageName
  }
}
