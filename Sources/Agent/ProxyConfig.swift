internal import Foundation
package import PilotfishKit

/// The subset of Istio's `ProxyConfig` the agent and the bootstrap need, layered in Istio's order:
/// mesh defaults, then the mesh config file's `defaultConfig` (when given), then the `PROXY_CONFIG`
/// environment variable, then the pod annotation `proxy.istio.io/config`. Each layer is a JSON merge
/// patch over the previous one; the merged document is kept (`document`) so the node metadata key
/// `PROXY_CONFIG` carries every field, including those this type does not model.
package struct ProxyConfig: Equatable, Sendable {
  package struct StatsMatcher: Equatable, Sendable {
    package var inclusionPrefixes: [String] = []
    package var inclusionSuffixes: [String] = []
    package var inclusionRegexps: [String] = []
  }

  package var configPath: String
  package var binaryPath: String
  package var serviceCluster: String
  package var discoveryAddress: String
  package var proxyAdminPort: Int
  package var statusPort: Int
  /// nil or 0: let the proxy pick (Istio: ISTIO_CPU_LIMIT when set).
  package var concurrency: Int?
  package var drainDuration: Duration
  package var terminationDrainDuration: Duration
  package var statNameLength: Int
  package var proxyMetadata: [String: String]
  package var proxyStatsMatcher: StatsMatcher
  /// Tracing is off unless a layer configures it (Pilotfish does not default to Zipkin).
  package var tracing: JSONValue?
  /// Extra runtime values for the bootstrap's static runtime layer.
  package var runtimeValues: [String: String]
  /// The merged ProxyConfig document (proto3 JSON field names).
  package var document: JSONValue

  /// Istio's `DefaultProxyConfig` for the fields above, with tracing off.
  package static let meshDefaultsDocument: JSONValue = .object([
    "configPath": .string("./etc/istio/proxy"),
    "binaryPath": .string("/usr/local/bin/envoy"),
    "serviceCluster": .string("istio-proxy"),
    "drainDuration": .string("45s"),
    "terminationDrainDuration": .string("5s"),
    "proxyAdminPort": 15000,
    "statusPort": 15020,
    "discoveryAddress": .string("istiod.istio-system.svc:15012"),
    "controlPlaneAuthPolicy": .string("MUTUAL_TLS"),
    "statNameLength": 189,
  ])

  package static var meshDefaults: ProxyConfig {
    // The defaults are well-formed by construction.
    try! ProxyConfig(document: meshDefaultsDocument, source: "mesh defaults")
  }

  /// A layer to apply: the text (JSON or YAML) and a name for error messages.
  package struct Layer: Sendable {
    package var source: String
    package var text: String?
    package var value: JSONValue?
    package var code: AgentError.Code
    package init(source: String, text: String, code: AgentError.Code) {
      self.source = source
      self.text = text
      self.code = code
    }
    package init(source: String, value: JSONValue, code: AgentError.Code) {
      self.source = source
      self.value = value
      self.code = code
    }
  }

  /// Mesh defaults with `layers` applied in order (later wins).
  package static func layered(_ layers: [Layer]) throws(AgentError) -> ProxyConfig {
    var document = meshDefaultsDocument
    for layer in layers {
      let patch: JSONValue
      do {
        patch = try layer.value ?? JSONValue.parse(jsonOrYAML: layer.text ?? "")
      } catch {
        throw AgentError(layer.code, "\(layer.source): malformed ProxyConfig", cause: error)
      }
      guard case .object = patch else {
        throw AgentError(layer.code, "\(layer.source): ProxyConfig must be an object")
      }
      let candidate = document.merged(with: patch)
      // Validate each layer as it is applied so the error names the layer that broke it.
      _ = try ProxyConfig(document: candidate, source: layer.source, code: layer.code)
      document = candidate
    }
    return try ProxyConfig(document: document, source: "ProxyConfig")
  }

  package init(
    document: JSONValue, source: String, code: AgentError.Code = .invalidEnvironment
  ) throws(AgentError) {
    let fields = FieldReader(object: document.objectValue ?? [:], source: source, code: code)
    self.document = document
    configPath = try fields.string("configPath") ?? "./etc/istio/proxy"
    binaryPath = try fields.string("binaryPath") ?? "/usr/local/bin/envoy"
    serviceCluster = try fields.string("serviceCluster") ?? "istio-proxy"
    discoveryAddress = try fields.string("discoveryAddress") ?? ""
    proxyAdminPort = try fields.port("proxyAdminPort") ?? 15000
    statusPort = try fields.port("statusPort") ?? 15020
    concurrency = try fields.int("concurrency")
    drainDuration = try fields.duration("drainDuration") ?? .seconds(45)
    terminationDrainDuration = try fields.duration("terminationDrainDuration") ?? .seconds(5)
    statNameLength = try fields.int("statNameLength") ?? 189
    proxyMetadata = try fields.stringMap("proxyMetadata")
    runtimeValues = try fields.stringMap("runtimeValues")
    tracing = document["tracing"].flatMap { $0 == .null ? nil : $0 }
    var matcher = StatsMatcher()
    if let m = document["proxyStatsMatcher"] {
      let sub = FieldReader(
        object: m.objectValue ?? [:], source: source + " proxyStatsMatcher", code: code)
      matcher.inclusionPrefixes = try sub.stringList("inclusionPrefixes")
      matcher.inclusionSuffixes = try sub.stringList("inclusionSuffixes")
      matcher.inclusionRegexps = try sub.stringList("inclusionRegexps")
    }
    proxyStatsMatcher = matcher
  }
}

/// Typed field access on a JSON object, throwing errors that name the source and the field.
struct FieldReader {
  var object: JSONValue.Object
  var source: String
  var code: AgentError.Code

  func fail(_ key: String, _ what: String) -> AgentError {
    AgentError(code, "\(source): field \(key): \(what)")
  }

  func string(_ key: String) throws(AgentError) -> String? {
    switch object[key] {
    case nil, .null?: return nil
    case .string(let s)?: return s
    default: throw fail(key, "expected a string")
    }
  }

  func int(_ key: String) throws(AgentError) -> Int? {
    switch object[key] {
    case nil, .null?: return nil
    case .number(let n)?:
      // A whole number written as 10, 1e1 or 10.0.
      guard let d = Double(n), d.rounded() == d, abs(d) < 1e12 else { throw fail(key, "expected an integer") }
      return Int(d)
    case .string(let s)?:
      guard let i = Int(s) else { throw fail(key, "expected an integer, got \"\(s)\"") }
      return i
    default: throw fail(key, "expected an integer")
    }
  }

  func port(_ key: String) throws(AgentError) -> Int? {
    guard let p = try int(key) else { return nil }
    guard (0...65535).contains(p) else { throw fail(key, "port \(p) out of range") }
    return p
  }

  func duration(_ key: String) throws(AgentError) -> Duration? {
    guard let s = try string(key) else { return nil }
    guard let d = GoDuration.parse(s) else {
      throw fail(key, "invalid duration \"\(s)\" (e.g. 45s, 1m30s; \(GoDuration.rangeHint))")
    }
    return d
  }

  func stringMap(_ key: String) throws(AgentError) -> [String: String] {
    switch object[key] {
    case nil, .null?: return [:]
    case .object(let o)?:
      var out: [String: String] = [:]
      for (k, v) in o {
        switch v {
        case .string(let s): out[k] = s
        case .number(let n):
          // Int(exactly:) is nil for 1e300 or inf, which would trap in Int(_:); those print as Doubles.
          let d = Double(n) ?? 0
          out[k] = Int(exactly: d).map { String($0) } ?? String(d)
        case .bool(let b): out[k] = String(b)
        default: throw fail("\(key).\(k)", "expected a string")
        }
      }
      return out
    default: throw fail(key, "expected an object of strings")
    }
  }

  func stringList(_ key: String) throws(AgentError) -> [String] {
    switch object[key] {
    case nil, .null?: return []
    case .array(let a)?:
      var out: [String] = []
      for v in a {
        guard case .string(let s) = v else { throw fail(key, "expected a list of strings") }
        out.append(s)
      }
      return out
    default: throw fail(key, "expected a list of strings")
    }
  }
}

/// Go / protobuf duration strings: "45s", "1m30s", "500ms", "1.5s", "2h".
package enum GoDuration {
  /// Go's limit: a duration is an Int64 count of nanoseconds (about 2562047h); longer is an error there too.
  package static let maxNanoseconds = Double(Int64.max)
  /// What an error message says about the range.
  package static let rangeHint = "at most 2562047h"

  /// nil for text that is not a duration or one longer than ``maxNanoseconds`` (`3000000h`, `1e300s`):
  /// never traps on user input.
  package static func parse(_ text: String) -> Duration? {
    var rest = Substring(text.trimmingCharacters(in: .whitespaces))
    if rest == "0" { return .zero }
    guard !rest.isEmpty else { return nil }
    var total = Duration.zero
    var totalNanoseconds = 0.0
    let units: [(String, Double)] = [
      ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
    ]
    while !rest.isEmpty {
      let number = rest.prefix { $0.isNumber || $0 == "." }
      guard !number.isEmpty, let value = Double(number) else { return nil }
      rest = rest.dropFirst(number.count)
      guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
      rest = rest.dropFirst(unit.0.count)
      let nanoseconds = (value * unit.1 * 1e9).rounded()
      totalNanoseconds += nanoseconds
      guard nanoseconds.isFinite, totalNanoseconds < maxNanoseconds else { return nil }
      total += .nanoseconds(Int64(nanoseconds))
    }
    return total
  }

  /// Proto3 JSON form: "45s", "0.250s".
  package static func format(_ d: Duration) -> String {
    let (s, attos) = d.components
    if attos == 0 { return "\(s)s" }
    let nanos = attos / 1_000_000_000
    var frac = String(nanos)
    frac = String(repeating: "0", count: 9 - frac.count) + frac
    while frac.hasSuffix("0") { frac.removeLast() }
    return "\(s).\(frac)s"
  }
}
