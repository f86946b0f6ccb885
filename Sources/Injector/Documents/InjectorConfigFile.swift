internal import Foundation
internal import PilotfishKit

/// Reads an injector configuration file: a YAML (or JSON) mapping whose keys are ``InjectorSettings``
/// field names, each optional, on top of the defaults (or of given settings).
///
/// ```yaml
/// proxyImage: registry.example/pilotfish-proxy:1.0
/// nativeSidecars: auto        # enabled | disabled | auto
/// statusPort: 15020
/// proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}
/// ```
///
/// Unknown keys and values of the wrong type are errors naming the file and the field.
package enum InjectorConfigFile {
  package static let fieldNames = [
    "proxyImage", "injectByDefault", "nativeSidecars", "caAddress", "trustDomain", "clusterID", "meshID",
    "revision", "kubeletMinorVersion", "statusPort", "rewriteAppProbes", "holdApplicationUntilProxyStarts",
    "proxyMetadata", "cniMode",
    "nativeNftables",
  ]

  /// `text` applied to `base`; `source` names the file in errors.
  package static func load(
    _ text: String, source: String, base: InjectorSettings = InjectorSettings()
  ) throws(ManifestError) -> InjectorSettings {
    let document: JSONValue
    do {
      let documents = try Manifest.parseYAMLDocuments(text)
      guard documents.count <= 1 else {
        throw ManifestError(.configuration, "\(source): expected one document, found \(documents.count)")
      }
      document = documents.first ?? .emptyObject
    } catch let error as ManifestError {
      throw error
    } catch {
      throw ManifestError(.configuration, "\(source): \(error)")
    }
    if document == .null { return base }
    guard let fields = document.objectValue else {
      throw ManifestError(.configuration, "\(source): expected a mapping of setting names to values")
    }
    var settings = base
    for (name, value) in fields {
      let field = Field(source: source, name: name, value: value)
      switch name {
      case "proxyImage": settings.proxyImage = try field.string()
      case "injectByDefault": settings.injectByDefault = try field.bool()
      case "nativeSidecars": settings.nativeSidecars = try field.nativeSidecars()
      case "caAddress": settings.caAddress = try field.string()
      case "trustDomain": settings.trustDomain = try field.string()
      case "clusterID": settings.clusterID = try field.string()
      case "meshID": settings.meshID = try field.string()
      case "revision": settings.revision = try field.string()
      case "kubeletMinorVersion": settings.kubeletMinorVersion = try field.minorVersion()
      case "statusPort": settings.statusPort = try field.port()
      case "rewriteAppProbes": settings.rewriteAppProbes = try field.bool()
      case "holdApplicationUntilProxyStarts": settings.holdApplicationUntilProxyStarts = try field.bool()
      case "proxyMetadata": settings.proxyMetadata = try field.stringMap()
      case "cniMode": settings.cniMode = try field.bool()
      case "nativeNftables": settings.nativeNftables = try field.bool()
      default:
        throw ManifestError(
          .configuration,
          "\(source): unknown field \"\(name)\"; known fields: \(fieldNames.joined(separator: ", "))")
      }
    }
    return settings
  }

  /// Parses `enabled`, `disabled` or `auto` (as given on the command line).
  package static func nativeSidecarMode(_ text: String, source: String) throws(ManifestError)
    -> NativeSidecarMode
  {
    try Field(source: source, name: nil, value: .string(text)).nativeSidecars()
  }

  private struct Field {
    var source: String
    var name: String?
    var value: JSONValue

    func fail(_ expected: String) -> ManifestError {
      let shown = value.jsonText.count > 60 ? String(value.jsonText.prefix(57)) + "..." : value.jsonText
      let subject = name.map { "\(source): field \"\($0)\"" } ?? source
      return ManifestError(.configuration, "\(subject): expected \(expected), got \(shown)")
    }

    func string() throws(ManifestError) -> String {
      switch value {
      case .string(let s): return s
      case .number(let n): return n
      default: throw fail("a string")
      }
    }

    func bool() throws(ManifestError) -> Bool {
      switch value {
      case .bool(let b): return b
      case .string("true"): return true
      case .string("false"): return false
      default: throw fail("true or false")
      }
    }

    func port() throws(ManifestError) -> Int {
      let number: Int?
      switch value {
      case .number(let n): number = Int(n)
      case .string(let s): number = Int(s)
      default: number = nil
      }
      guard let number, (0...65535).contains(number) else { throw fail("a port number 0-65535") }
      return number
    }

    func minorVersion() throws(ManifestError) -> Int? {
      if value == .null { return nil }
      guard case .number(let n) = value, let minor = Int(n), minor >= 0 else {
        throw fail("a Kubernetes minor version such as 33, or null")
      }
      return minor
    }

    func stringMap() throws(ManifestError) -> [String: String] {
      guard let object = value.objectValue else { throw fail("a mapping of names to strings") }
      var result: [String: String] = [:]
      for (key, entry) in object {
        switch entry {
        case .string(let s): result[key] = s
        case .number(let n): result[key] = n
        case .bool(let b): result[key] = b ? "true" : "false"
        default:
          throw Field(source: source, name: "\(name ?? "").\(key)", value: entry).fail("a string")
        }
      }
      return result
    }

    func nativeSidecars() throws(ManifestError) -> NativeSidecarMode {
      switch value {
      case .string(let s):
        guard let mode = NativeSidecarMode(rawValue: s.lowercased()) else {
          throw fail("enabled, disabled or auto")
        }
        return mode
      case .bool(let b): return b ? .enabled : .disabled
      default: throw fail("enabled, disabled or auto")
      }
    }
  }
}

extension InjectorConfigFile {
  /// The settings the command-line tools use: defaults, then the file at `configPath` (if any), then
  /// the flags that were given (nil = not given).
  package static func resolve(
    configPath: String?, proxyImage: String?, nativeSidecars: String?, revision: String?
  ) throws(ManifestError) -> InjectorSettings {
    var settings = InjectorSettings()
    if let configPath {
      let text: String
      do {
        text = try String(contentsOfFile: configPath, encoding: .utf8)
      } catch {
        throw ManifestError(
          .configuration, "cannot read injector config \(configPath): \(error.localizedDescription)")
      }
      settings = try load(text, source: configPath, base: settings)
    }
    if let proxyImage {
      guard !proxyImage.isEmpty else {
        throw ManifestError(.configuration, "--proxy-image: empty image name")
      }
      settings.proxyImage = proxyImage
    }
    if let nativeSidecars {
      settings.nativeSidecars = try nativeSidecarMode(nativeSidecars, source: "--native-sidecars")
    }
    if let revision { settings.revision = revision }
    return settings
  }
}
