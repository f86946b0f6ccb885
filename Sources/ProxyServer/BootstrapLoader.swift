package import EnvoyAPI
internal import Foundation
internal import PilotfishKit
package import SwiftProtobuf

/// Reads a v3 bootstrap the way Envoy does: `-c` (JSON, YAML, or binary by extension; anything else is
/// tried as JSON, then YAML) with `--config-yaml` merged over it using protobuf merge semantics (singular
/// fields replaced, messages merged, repeated fields appended). JSON follows proto3 JSON mapping (both
/// snake_case and lowerCamelCase names, `"@type"` Anys via the EnvoyAPI registry, durations as "1.5s").
package enum BootstrapLoader {
  package enum Format: Sendable, Equatable {
    case json, yaml, binary, textProto, auto

    package init(path: String) {
      switch (path as NSString).pathExtension.lowercased() {
      case "json": self = .json
      case "yaml", "yml": self = .yaml
      case "pb": self = .binary
      case "pb_text": self = .textProto
      default: self = .auto
      }
    }
  }

  /// The decoded bootstrap and the unknown fields that were allowed (warnings to log).
  package struct Loaded: Sendable {
    package var bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
    package var warnings: [BootstrapError]
  }

  /// Source name used in errors about the `--config-yaml` text.
  package static let configYAMLSource = "--config-yaml"

  package static func load(
    configPath: String?, configYAML: String?, allowUnknownFields: Bool
  ) throws(BootstrapError) -> Loaded {
    guard configPath != nil || configYAML != nil else {
      throw BootstrapError(
        code: .unreadable, source: "pilotfish-proxy", path: "",
        message: "at least one of --config-path or --config-yaml is required")
    }
    var loaded = Loaded(bootstrap: .init(), warnings: [])
    if let configPath {
      let data: Data
      do {
        data = try Data(contentsOf: URL(fileURLWithPath: configPath))
      } catch {
        throw BootstrapError(
          code: .unreadable, source: configPath, path: "",
          message: "cannot read the file: \(Self.ioReason(error))")
      }
      let format = Format(path: configPath)
      if format == .textProto {
        throw BootstrapError(
          code: .unreadable, source: configPath, path: "",
          message:
            "text-format protobuf (.pb_text) bootstraps are not supported; use JSON, YAML or binary (.pb)")
      }
      if format == .binary {
        do {
          loaded.bootstrap = try Envoy_Config_Bootstrap_V3_Bootstrap(serializedBytes: [UInt8](data))
        } catch {
          throw BootstrapError(
            code: .syntax, source: configPath, path: "", message: "invalid binary protobuf (\(error))")
        }
      } else {
        loaded = try decode(
          String(decoding: data, as: UTF8.self), format: format, source: configPath,
          allowUnknownFields: allowUnknownFields)
      }
    }
    if let configYAML {
      let overlay = try decode(
        configYAML, format: .yaml, source: configYAMLSource, allowUnknownFields: allowUnknownFields)
      if configPath == nil {
        loaded = overlay
      } else {
        do {
          let bytes: [UInt8] = try overlay.bootstrap.serializedBytes()
          try loaded.bootstrap.merge(serializedBytes: bytes)
        } catch {
          throw BootstrapError(
            code: .invalidValue, source: configYAMLSource, path: "",
            message: "cannot merge over the file (\(error))")
        }
        loaded.warnings += overlay.warnings
      }
    }
    return loaded
  }

  /// Decodes one bootstrap document, reporting the first problem with its field path.
  package static func decode(
    _ text: String, format: Format, source: String, allowUnknownFields: Bool
  ) throws(BootstrapError) -> Loaded {
    let (bootstrap, warnings) = try decodeMessage(
      text, as: Envoy_Config_Bootstrap_V3_Bootstrap.self, format: format, source: source,
      allowUnknownFields: allowUnknownFields)
    return Loaded(bootstrap: bootstrap, warnings: warnings)
  }

  /// Decodes one JSON or YAML document as `M` (a bootstrap, a DiscoveryResponse of a watched config file),
  /// reporting the first problem with its field path.
  package static func decodeMessage<M: SwiftProtobuf.Message>(
    _ text: String, as type: M.Type, format: Format, source: String, allowUnknownFields: Bool
  ) throws(BootstrapError) -> (M, [BootstrapError]) {
    var json: JSONValue
    do {
      switch format {
      case .json:
        json = try JSONValue.parseJSON(text)
      case .yaml:
        json = try JSONValue.parseYAML(text, orIfEmpty: .emptyObject)
      case .auto, .binary, .textProto:
        if let parsed = try? JSONValue.parseJSON(text) {
          json = parsed
        } else {
          json = try JSONValue.parseYAML(text, orIfEmpty: .emptyObject)
        }
      }
    } catch {
      let kind = format == .json ? "JSON" : "YAML"
      let place = error.line > 0 ? " at line \(error.line), column \(error.column)" : ""
      throw BootstrapError(
        code: .syntax, source: source, path: "", message: "invalid \(kind)\(place): \(error.message)")
    }
    json = json.wrappingIstioExtensionTypes()
    var checker = ProtoJSONChecker(source: source, allowUnknownFields: allowUnknownFields)
    var droppedAnys: [BootstrapError] = []
    if allowUnknownFields {
      var dropped: [String] = []
      json = json.droppingUnknownAnys(path: "", dropped: &dropped)
      droppedAnys = dropped.map {
        BootstrapError(code: .unknownType, source: source, path: $0, message: "unknown type; dropped")
      }
    }
    try checker.check(json, as: M.self, path: FieldPath())
    var options = JSONDecodingOptions()
    options.ignoreUnknownFields = allowUnknownFields
    do {
      let message = try M(jsonString: json.jsonText(pretty: false, escapingHTML: false), options: options)
      return (message, droppedAnys + checker.warnings)
    } catch {
      // The walk found nothing specific; report what the decoder says.
      throw BootstrapError(
        code: .invalidValue, source: source, path: "",
        message: "invalid \(M.protoMessageName) (\(ProtoJSONChecker.reason(error)))")
    }
  }

  private static func ioReason(_ error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
      underlying.domain == NSPOSIXErrorDomain
    {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
      return "No such file or directory"
    }
    return nsError.localizedDescription
  }
}
