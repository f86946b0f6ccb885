internal import OrderedCollections
internal import PilotfishKit

/// The per-pod injection parameters: the mesh settings overlaid with the pod's annotations.
///
/// Invariant: a value exists only if every annotation it read was valid, so building the containers from
/// it cannot fail; strings passed to `pilotfish istio-iptables` are the annotation's text, unchanged.
struct SidecarOptions {
  /// REDIRECT, TPROXY or NONE.
  var interceptionMode: String
  var native: Bool
  /// Proxy first in `containers`, with a postStart hook that waits for it (classic sidecars only).
  var holdApplication: Bool
  var statusPort: Int
  var includeOutboundIPRanges: String
  var excludeOutboundIPRanges: String
  var includeInboundPorts: String
  /// The excluded inbound ports given by the pod, with the status port added unless listed or 0.
  var excludeInboundPorts: String
  var includeOutboundPorts: String?
  var excludeOutboundPorts: String?
  /// `-k`: istio.io/reroute-virtual-interfaces, else traffic.sidecar.istio.io/kubevirtInterfaces.
  var virtualInterfaces: String?
  var excludeInterfaces: String?
  var readinessInitialDelaySeconds: Int
  var readinessPeriodSeconds: Int
  var readinessFailureThreshold: Int
  /// The proxy's (and init container's) `resources`.
  var resources: JSONValue
  var image: String
  var proxyLogLevel: String
  var proxyComponentLogLevel: String
  var agentLogLevel: String
  /// `--log-level` of `pilotfish istio-iptables`, derived from the agent log level.
  var iptablesLogLevel: String
  /// The pod's `proxy.istio.io/config`, an object (`{}` when absent): `PROXY_CONFIG`.
  var proxyConfig: JSONValue
  /// Settings' proxyMetadata overlaid with the pod ProxyConfig's, in key order.
  var proxyMetadata: [(name: String, value: String)]
  var rewriteProbes: Bool
  var mergeMetrics: Bool
  var userVolumes: [(name: String, source: OrderedDictionary<String, JSONValue>)]
  var userVolumeMounts: [(name: String, mount: OrderedDictionary<String, JSONValue>)]
  var bootstrapOverride: String?
  var cniMode: Bool
  var nativeNftables: Bool

  typealias Keys = InjectionKeys

  init(annotations: OrderedDictionary<String, String>, settings: InjectorSettings) throws(InjectionError) {
    try Self.validate(annotations)
    func value(_ key: String) -> String? { annotations[key] }

    // proxy.istio.io/config, checked where the injector reads it.
    var proxyConfig: OrderedDictionary<String, JSONValue> = [:]
    if let text = value(Keys.proxyConfig) {
      proxyConfig = try Self.parseProxyConfig(text)
    }
    self.proxyConfig = .object(proxyConfig)

    interceptionMode =
      value(Keys.interceptionMode) ?? proxyConfig["interceptionMode"]?.stringValue ?? "REDIRECT"
    native =
      value(Keys.nativeSidecar).flatMap(AnnotationRules.bool)
      ?? settings.nativeSidecars.isOn(kubeletMinorVersion: settings.kubeletMinorVersion)
    holdApplication =
      !native
      && (proxyConfig["holdApplicationUntilProxyStarts"]?.boolValue
        ?? settings.holdApplicationUntilProxyStarts)
    statusPort =
      try value(Keys.statusPort).map { v throws(InjectionError) in
        try AnnotationRules.statusPort(Keys.statusPort, v)
      } ?? settings.statusPort

    includeOutboundIPRanges = value(Keys.includeOutboundIPRanges) ?? "*"
    excludeOutboundIPRanges = value(Keys.excludeOutboundIPRanges) ?? ""
    includeInboundPorts = value(Keys.includeInboundPorts) ?? "*"
    excludeInboundPorts = Self.adding(statusPort: statusPort, to: value(Keys.excludeInboundPorts) ?? "")
    includeOutboundPorts = value(Keys.includeOutboundPorts)
    excludeOutboundPorts = value(Keys.excludeOutboundPorts)
    virtualInterfaces = value(Keys.rerouteVirtualInterfaces) ?? value(Keys.kubevirtInterfaces)
    excludeInterfaces = value(Keys.excludeInterfaces)

    readinessInitialDelaySeconds = value(Keys.readinessInitialDelay).flatMap { Int($0) } ?? 0
    readinessPeriodSeconds = value(Keys.readinessPeriod).flatMap { Int($0) } ?? 15
    readinessFailureThreshold = value(Keys.readinessFailureThreshold).flatMap { Int($0) } ?? 4

    let cpu = value(Keys.proxyCPU)
    let memory = value(Keys.proxyMemory)
    let cpuLimit = value(Keys.proxyCPULimit)
    let memoryLimit = value(Keys.proxyMemoryLimit)
    if cpu == nil && memory == nil && cpuLimit == nil && memoryLimit == nil {
      resources = ["limits": ["cpu": "2", "memory": "1Gi"], "requests": ["cpu": "100m", "memory": "128Mi"]]
    } else {
      var resources: OrderedDictionary<String, JSONValue> = [:]
      var limits: OrderedDictionary<String, JSONValue> = [:]
      var requests: OrderedDictionary<String, JSONValue> = [:]
      if let cpuLimit { limits["cpu"] = .string(cpuLimit) }
      if let memoryLimit { limits["memory"] = .string(memoryLimit) }
      if let cpu { requests["cpu"] = .string(cpu) }
      if let memory { requests["memory"] = .string(memory) }
      if !limits.isEmpty { resources["limits"] = .object(limits) }
      if !requests.isEmpty { resources["requests"] = .object(requests) }
      self.resources = .object(resources)
    }

    image = value(Keys.proxyImage).flatMap { $0.isEmpty ? nil : $0 } ?? settings.proxyImage
    proxyLogLevel = value(Keys.logLevel) ?? "warning"
    proxyComponentLogLevel = value(Keys.componentLogLevel) ?? "misc:error"
    agentLogLevel = value(Keys.agentLogLevel) ?? "default:info"
    iptablesLogLevel = try Self.pilotfishLogLevel(agentLogLevel)

    var metadata = settings.proxyMetadata
    if case .object(let extra)? = proxyConfig["proxyMetadata"] {
      for (key, value) in extra { metadata[key] = value.stringValue ?? "" }
    }
    proxyMetadata = metadata.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }

    rewriteProbes =
      value(Keys.rewriteAppHTTPProbers).flatMap(AnnotationRules.bool) ?? settings.rewriteAppProbes
    mergeMetrics = value(Keys.mergeMetrics).flatMap(AnnotationRules.bool) ?? true

    userVolumes = try Self.namedObjects(Keys.userVolume, value(Keys.userVolume)).map { ($0.name, $0.object) }
    userVolumeMounts = try Self.namedObjects(Keys.userVolumeMount, value(Keys.userVolumeMount)).map {
      ($0.name, $0.object)
    }
    bootstrapOverride = value(Keys.bootstrapOverride)
    cniMode = settings.cniMode
    nativeNftables = settings.nativeNftables
  }

  /// Whether an `istio-init`/`istio-validation` container is added.
  var hasInitContainer: Bool { interceptionMode != "NONE" }

  /// Checks every annotation with a grammar, in a fixed order, before anything is built.
  private static func validate(_ annotations: OrderedDictionary<String, String>) throws(InjectionError) {
    func check(_ key: String, _ rule: (String, String) throws(InjectionError) -> Void) throws(InjectionError)
    {
      if let value = annotations[key] { try rule(key, value) }
    }
    try check(Keys.interceptionMode) { name, value throws(InjectionError) in
      guard ["REDIRECT", "TPROXY", "NONE"].contains(value) else {
        throw .annotation(name, value, "is not an interception mode (REDIRECT, TPROXY or NONE)")
      }
    }
    try check(Keys.statusPort) { name, value throws(InjectionError) in
      _ = try AnnotationRules.statusPort(name, value)
    }
    for key in [Keys.readinessInitialDelay, Keys.readinessPeriod, Keys.readinessFailureThreshold] {
      try check(key) { name, value throws(InjectionError) in _ = try AnnotationRules.uint32(name, value) }
    }
    try check(Keys.includeOutboundIPRanges) { name, value throws(InjectionError) in
      try AnnotationRules.cidrList(name, value, allowStar: true)
    }
    try check(Keys.excludeOutboundIPRanges) { name, value throws(InjectionError) in
      try AnnotationRules.cidrList(name, value, allowStar: false)
    }
    try check(Keys.includeInboundPorts) { name, value throws(InjectionError) in
      try AnnotationRules.portList(name, value, allowStar: true)
    }
    for key in [Keys.excludeInboundPorts, Keys.includeOutboundPorts, Keys.excludeOutboundPorts] {
      try check(key) { name, value throws(InjectionError) in try AnnotationRules.portList(name, value) }
    }
    for key in [Keys.excludeInterfaces, Keys.kubevirtInterfaces, Keys.rerouteVirtualInterfaces] {
      try check(key) { name, value throws(InjectionError) in try AnnotationRules.interfaceList(name, value) }
    }
    try check(Keys.mergeMetrics) { name, value throws(InjectionError) in
      _ = try AnnotationRules.bool(name, value)
    }
    for key in [Keys.proxyCPU, Keys.proxyMemory, Keys.proxyCPULimit, Keys.proxyMemoryLimit] {
      try check(key) { name, value throws(InjectionError) in try AnnotationRules.quantity(name, value) }
    }
    try check(Keys.proxyImage) { name, value throws(InjectionError) in
      guard !value.isEmpty, !value.contains(where: { $0.isWhitespace }) else {
        throw .annotation(name, value, "is not a container image reference")
      }
    }
    try check(Keys.bootstrapOverride) { name, value throws(InjectionError) in
      guard !value.isEmpty, value.count <= 253,
        value.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
      else { throw .annotation(name, value, "is not a ConfigMap name") }
    }
    try check(Keys.templates) { name, value throws(InjectionError) in
      for template in value.split(separator: ",") where AnnotationRules.trim(template) != "sidecar" {
        throw .annotation(name, value, "names a template Pilotfish does not have (only \"sidecar\")")
      }
    }
  }

  /// `proxy.istio.io/config`: a YAML or JSON ProxyConfig object; the fields the injector reads must have
  /// their ProxyConfig types.
  static func parseProxyConfig(_ text: String) throws(InjectionError) -> OrderedDictionary<String, JSONValue>
  {
    let name = Keys.proxyConfig
    let parsed: JSONValue
    do {
      parsed = try JSONValue.parseYAML(text)
    } catch {
      throw InjectionError(
        .invalidAnnotation,
        "annotation \(name): \(InjectionError.quoted(text)) is not YAML or JSON: \(error.message)")
    }
    guard case .object(let config) = parsed else {
      throw .annotation(name, text, "is not a ProxyConfig object")
    }
    if let hold = config["holdApplicationUntilProxyStarts"], hold.boolValue == nil {
      throw .annotation(name, text, "has a holdApplicationUntilProxyStarts that is not a boolean")
    }
    if let mode = config["interceptionMode"],
      !["REDIRECT", "TPROXY", "NONE"].contains(mode.stringValue ?? "")
    {
      throw .annotation(name, text, "has an interceptionMode that is not REDIRECT, TPROXY or NONE")
    }
    if let metadata = config["proxyMetadata"] {
      guard case .object(let entries) = metadata, entries.values.allSatisfy({ $0.stringValue != nil }) else {
        throw .annotation(name, text, "has a proxyMetadata that is not a map of strings")
      }
    }
    return config
  }

  /// `sidecar.istio.io/userVolume(Mount)`: a JSON object from name to object, sorted by name.
  private static func namedObjects(
    _ name: String, _ text: String?
  ) throws(InjectionError) -> [(name: String, object: OrderedDictionary<String, JSONValue>)] {
    guard let text else { return [] }
    guard case .object(let entries)? = try? JSONValue.parseYAML(text) else {
      throw .annotation(
        name, text, "is not a JSON object from volume name to \(name == Keys.userVolume ? "volume" : "mount")"
      )
    }
    var result: [(name: String, object: OrderedDictionary<String, JSONValue>)] = []
    for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
      guard case .object(let object) = value, !key.isEmpty else {
        throw InjectionError(
          .invalidAnnotation, "annotation \(name): entry \(InjectionError.quoted(key)) is not an object")
      }
      result.append((key, object))
    }
    return result
  }

  /// The `-d` list: the pod's excluded inbound ports plus the status port, unless 0 or listed already.
  static func adding(statusPort: Int, to ports: String) -> String {
    guard statusPort != 0 else { return ports }
    let port = String(statusPort)
    let items = ports.split(separator: ",", omittingEmptySubsequences: false)
    if items.contains(where: { $0 == port }) { return ports }
    let kept = items.map { AnnotationRules.trim($0) }.filter { !$0.isEmpty }
    return (kept + [port]).joined(separator: ",")
  }

  /// Istio's `--log_output_level` (`info`, `default:debug,ads:info`) as a `pilotfish` `--log-level`: the
  /// level of the `default` scope (or of an entry without scope), `info` when none is given.
  static func pilotfishLogLevel(_ istioLevel: String) throws(InjectionError) -> String {
    var level = "info"
    for entry in istioLevel.split(separator: ",") {
      let parts = entry.split(separator: ":", maxSplits: 1)
      let scoped = parts.count == 2
      guard !scoped || AnnotationRules.trim(parts[0]) == "default" else { continue }
      switch AnnotationRules.trim(scoped ? parts[1] : parts[0]).lowercased() {
      case "debug": level = "debug"
      case "info": level = "info"
      case "warn", "warning": level = "warning"
      case "error", "fatal", "none": level = "error"
      default:
        throw .annotation(
          Keys.agentLogLevel, istioLevel,
          "is not a log level (debug, info, warn, error or none, as [scope:]level,...)")
      }
    }
    return level
  }
}
