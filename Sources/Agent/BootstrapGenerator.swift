package import EnvoyAPI
internal import Foundation
package import PilotfishKit
package import SwiftProtobuf

/// Builds the Envoy v3 bootstrap the agent hands to the proxy, equivalent to Istio's: node identity and
/// metadata, admin on loopback, the static clusters the agent serves (stats, readiness, SDS, xDS), the
/// 15021 health listener, ADS for LDS/CDS, stats tags and inclusion matchers, and a layered runtime.
package struct BootstrapGenerator: Sendable {
  package enum XDSMode: String, Sendable {
    /// Incremental xDS (`DELTA_GRPC`), Istio's default (`ISTIO_DELTA_XDS=true`).
    case delta
    /// State of the world (`GRPC`).
    case stateOfTheWorld
  }

  package var pod: PodMetadata
  package var xdsMode: XDSMode
  package var envoyStatusPort: Int
  package var envoyPrometheusPort: Int
  package var sdsSocketPath: String
  package var xdsSocketPath: String

  /// False when ProxyConfig's `discoveryAddress` is empty: no istiod, the sidecar config is static.
  package var hasControlPlane: Bool { !pod.proxyConfig.discoveryAddress.isEmpty }

  package static let defaultSDSSocket = "./var/run/secrets/workload-spiffe-uds/socket"
  package static let defaultXDSSocket = "./etc/istio/proxy/XDS"

  /// Settings default from the pod's effective environment (ISTIO_DELTA_XDS, ENVOY_STATUS_PORT,
  /// ENVOY_PROMETHEUS_PORT, WORKLOAD_IDENTITY_SOCKET_FILE).
  package init(pod: PodMetadata, xdsMode: XDSMode? = nil) throws(AgentError) {
    self.pod = pod
    let env = pod.environment
    if let mode = xdsMode {
      self.xdsMode = mode
    } else {
      switch env["ISTIO_DELTA_XDS"]?.lowercased() {
      case nil, "", "true", "1": self.xdsMode = .delta
      case "false", "0": self.xdsMode = .stateOfTheWorld
      case let other?:
        throw AgentError(.invalidEnvironment, "ISTIO_DELTA_XDS: expected true or false, got \"\(other)\"")
      }
    }
    func port(_ name: String, _ fallback: Int) throws(AgentError) -> Int {
      guard let text = env[name], !text.isEmpty else { return fallback }
      guard let p = Int(text), (1...65535).contains(p) else {
        throw AgentError(.invalidEnvironment, "\(name): invalid port \"\(text)\"")
      }
      return p
    }
    envoyStatusPort = try port("ENVOY_STATUS_PORT", 15021)
    envoyPrometheusPort = try port("ENVOY_PROMETHEUS_PORT", 15090)
    let socketFile = env["WORKLOAD_IDENTITY_SOCKET_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "socket"
    sdsSocketPath = "./var/run/secrets/workload-spiffe-uds/" + socketFile
    xdsSocketPath = Self.defaultXDSSocket
    let ports = [pod.proxyConfig.proxyAdminPort, pod.proxyConfig.statusPort, envoyStatusPort]
    if Set(ports).count != ports.count {
      throw AgentError(
        .invalidEnvironment,
        "port collision: proxyAdminPort \(ports[0]), statusPort \(ports[1]), ENVOY_STATUS_PORT \(ports[2])")
    }
  }

  // MARK: - Node

  /// `sidecar~<ip>~<pod>.<ns>~<domain>`.
  package var nodeID: String {
    "sidecar~\(pod.instanceIPs.first ?? "127.0.0.1")~\(pod.name).\(pod.namespace)~\(pod.domain)"
  }

  /// `<app label | app.kubernetes.io/name | canonical name>.<ns>`, else `<workload>.<ns>`,
  /// else `istio-proxy.<ns>`; a custom ProxyConfig.serviceCluster is used verbatim.
  package var nodeCluster: String {
    let configured = pod.proxyConfig.serviceCluster
    if !configured.isEmpty && configured != "istio-proxy" { return configured }
    for key in ["app", "app.kubernetes.io/name", "service.istio.io/canonical-name"] {
      if let v = pod.labels[key], !v.isEmpty { return "\(v).\(pod.namespace)" }
    }
    if !pod.workloadName.isEmpty { return "\(pod.workloadName).\(pod.namespace)" }
    return "istio-proxy.\(pod.namespace)"
  }

  package var locality: Envoy_Config_Core_V3_Locality? {
    guard let value = pod.labels["istio-locality"], !value.isEmpty else { return nil }
    let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    var l = Envoy_Config_Core_V3_Locality()
    l.region = parts[0]
    if parts.count > 1 { l.zone = parts[1] }
    if parts.count > 2 { l.subZone = parts[2...].joined(separator: ".") }
    return l
  }

  /// The node metadata Istio sets (booleans as strings, ports as numbers), plus every ISTIO_META_* key.
  package var nodeMetadata: [String: JSONValue] {
    var m = pod.meta
    var labels = pod.labels
    labels.removeValue(forKey: "pod-template-hash")
    func set(_ key: String, _ value: JSONValue) { m[key] = value }
    set("NAME", .string(pod.name))
    set("NAMESPACE", .string(pod.namespace))
    set("CLUSTER_ID", .string(pod.clusterID))
    set("MESH_ID", .string(pod.meshID))
    set("LABELS", Self.stringObject(labels))
    set("ANNOTATIONS", Self.stringObject(pod.annotations))
    set("INSTANCE_IPS", .string(pod.instanceIPs.joined(separator: ",")))
    set("ISTIO_VERSION", .string(pod.istioVersion))
    set("SERVICE_ACCOUNT", .string(pod.serviceAccount))
    set("WORKLOAD_NAME", .string(pod.workloadName))
    set("OWNER", .string(pod.owner))
    if !pod.nodeName.isEmpty { set("NODE_NAME", .string(pod.nodeName)) }
    if m["INTERCEPTION_MODE"] == nil { set("INTERCEPTION_MODE", .string("REDIRECT")) }
    set("PROXY_CONFIG", pod.proxyConfig.document)
    set("ENVOY_STATUS_PORT", .int(envoyStatusPort))
    set("ENVOY_PROMETHEUS_PORT", .int(envoyPrometheusPort))
    if m["METADATA_DISCOVERY"] == nil { set("METADATA_DISCOVERY", .string("false")) }
    set("WORKLOAD_IDENTITY_SOCKET_FILE", .string((sdsSocketPath as NSString).lastPathComponent))
    set(
      "ENVOY_SKIP_DEPRECATED_LOGS",
      .string(pod.environment["ENVOY_SKIP_DEPRECATED_LOGS"] ?? "true"))
    set(
      "EXIT_ON_ZERO_ACTIVE_CONNECTIONS",
      .string(pod.environment["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"] ?? "false"))
    if let dns = pod.environment["ISTIO_META_DNS_CAPTURE"] { set("DNS_CAPTURE", .string(dns)) }
    if case .string(let san)? = m["PILOT_SAN"] {
      set("PILOT_SAN", .array(san.split(separator: ",").map { .string(String($0)) }))
    }
    return m
  }

  package var node: Envoy_Config_Core_V3_Node {
    var node = Envoy_Config_Core_V3_Node()
    node.id = nodeID
    node.cluster = nodeCluster
    if let locality { node.locality = locality }
    node.metadata = Self.protobufStruct(nodeMetadata)
    return node
  }

  // MARK: - Bootstrap

  package func bootstrap() throws(AgentError) -> Envoy_Config_Bootstrap_V3_Bootstrap {
    var b = Envoy_Config_Bootstrap_V3_Bootstrap()
    b.node = node
    b.layeredRuntime = layeredRuntime
    b.statsConfig = statsConfig
    b.admin = admin
    do {
      b.staticResources.clusters = try staticClusters()
      b.staticResources.listeners = [try healthListener()]
      if hasControlPlane {
        b.dynamicResources = dynamicResources
      } else {
        // No discovery address: serve an empty mesh's sidecar config statically.
        b.staticResources.clusters += staticSidecarClusters()
        b.staticResources.listeners += try staticSidecarListeners()
      }
    } catch let error as AgentError {
      throw error
    } catch {
      throw AgentError(.bootstrap, "cannot build static resources", cause: error)
    }
    return b
  }

  package var admin: Envoy_Config_Bootstrap_V3_Admin {
    var admin = Envoy_Config_Bootstrap_V3_Admin()
    admin.accessLogPath = "/dev/null"
    admin.profilePath = "/var/lib/istio/data/envoy.prof"
    admin.address = Self.socketAddress("127.0.0.1", pod.proxyConfig.proxyAdminPort)
    return admin
  }

  package var layeredRuntime: Envoy_Config_Bootstrap_V3_LayeredRuntime {
    var values: [String: JSONValue] = [
      "re2.max_program_size.error_level": .string("32768"),
      "envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst":
        .bool(true),
      "envoy.reloadable_features.http_reject_path_with_fragment": .bool(false),
      "overload.global_downstream_max_connections": .string("2147483647"),
    ]
    for (k, v) in pod.proxyConfig.runtimeValues { values[k] = .string(v) }
    var global = Envoy_Config_Bootstrap_V3_RuntimeLayer()
    global.name = "global config"
    global.staticLayer = Self.protobufStruct(values)
    var adminLayer = Envoy_Config_Bootstrap_V3_RuntimeLayer()
    adminLayer.name = "admin"
    adminLayer.adminLayer = .init()
    var runtime = Envoy_Config_Bootstrap_V3_LayeredRuntime()
    runtime.layers = [global, adminLayer]
    return runtime
  }

  /// Istio's tag names, extracted from the `name=.=value;.;` segments its stats filter writes.
  package static let istioTagNames = [
    "reporter", "source_namespace", "source_workload", "source_workload_namespace",
    "source_principal", "source_app", "source_version", "source_cluster", "destination_namespace",
    "destination_workload", "destination_workload_namespace", "destination_principal",
    "destination_app", "destination_version", "destination_service", "destination_service_name",
    "destination_service_namespace", "destination_port", "destination_cluster", "request_protocol",
    "request_operation", "request_host", "response_flags", "grpc_response_status",
    "connection_security_policy", "source_canonical_service", "destination_canonical_service",
    "source_canonical_revision", "destination_canonical_revision",
  ]

  package var statsConfig: Envoy_Config_Metrics_V3_StatsConfig {
    var config = Envoy_Config_Metrics_V3_StatsConfig()
    config.useAllDefaultTags = .init(false)
    func tag(_ name: String, _ regex: String) -> Envoy_Config_Metrics_V3_TagSpecifier {
      var t = Envoy_Config_Metrics_V3_TagSpecifier()
      t.tagName = name
      t.regex = regex
      return t
    }
    config.statsTags =
      [
        tag("cluster_name", #"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"#),
        tag("tcp_prefix", #"^tcp\.((.*?)\.)\w+?$"#),
        tag("response_code", #"(response_code=\.=(.+?);\.;)|_rq(_(\d{3}))$"#),
        tag("response_code_class", #"_rq(_(\dxx))$"#),
        tag("http_conn_manager_prefix", #"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"#),
        tag("listener_address", #"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"#),
        tag("mongo_prefix", #"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"#),
        tag("cache", #"(cache\.(.+?)\.)"#),
        tag("component", #"(component\.(.+?)\.)"#),
        tag("tag", #"(tag\.(.+?);\.)"#),
        tag("wasm_filter", #"(wasm_filter\.(.+?)\.)"#),
      ] + Self.istioTagNames.map { tag($0, "(\($0)=\\.=(.*?);\\.;)") }

    // ProxyConfig.proxyStatsMatcher, plus the older per-pod annotations (comma-separated lists).
    var matcher = pod.proxyConfig.proxyStatsMatcher
    func annotationList(_ key: String) -> [String] {
      (pod.annotations["sidecar.istio.io/\(key)"] ?? "").split(separator: ",")
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    matcher.inclusionPrefixes += annotationList("statsInclusionPrefixes")
    matcher.inclusionSuffixes += annotationList("statsInclusionSuffixes")
    matcher.inclusionRegexps += annotationList("statsInclusionRegexps")
    var prefixes = ["reporter="] + matcher.inclusionPrefixes
    prefixes += [
      "cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm", "component",
      "istio",
    ]
    var suffixes = ["rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied"]
    if pod.environment["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"] == "true" {
      suffixes.append("downstream_cx_active")
    }
    suffixes += matcher.inclusionSuffixes
    let regexes = [#"vhost\..*\.route\..*"#] + matcher.inclusionRegexps
    var list = Envoy_Type_Matcher_V3_ListStringMatcher()
    func m(_ p: Envoy_Type_Matcher_V3_StringMatcher.OneOf_MatchPattern) -> Envoy_Type_Matcher_V3_StringMatcher
    {
      var s = Envoy_Type_Matcher_V3_StringMatcher()
      s.matchPattern = p
      return s
    }
    list.patterns =
      prefixes.map { m(.prefix($0)) } + suffixes.map { m(.suffix($0)) }
      + regexes.map { r in
        var regex = Envoy_Type_Matcher_V3_RegexMatcher()
        regex.regex = r
        return m(.safeRegex(regex))
      }
    config.statsMatcher.inclusionList = list
    return config
  }

  package var dynamicResources: Envoy_Config_Bootstrap_V3_Bootstrap.DynamicResources {
    var viaADS = Envoy_Config_Core_V3_ConfigSource()
    viaADS.ads = .init()
    viaADS.initialFetchTimeout = .init(seconds: 0)
    viaADS.resourceApiVersion = .v3
    var grpc = Envoy_Config_Core_V3_GrpcService()
    grpc.envoyGrpc.clusterName = "xds-grpc"
    var ads = Envoy_Config_Core_V3_ApiConfigSource()
    ads.apiType = xdsMode == .delta ? .deltaGrpc : .grpc
    ads.setNodeOnFirstMessageOnly = true
    ads.transportApiVersion = .v3
    ads.grpcServices = [grpc]
    var dynamic = Envoy_Config_Bootstrap_V3_Bootstrap.DynamicResources()
    dynamic.ldsConfig = viaADS
    dynamic.cdsConfig = viaADS
    dynamic.adsConfig = ads
    return dynamic
  }

  package func staticClusters() throws -> [Envoy_Config_Cluster_V3_Cluster] {
    let pc = pod.proxyConfig
    let prometheus = Self.cluster(
      "prometheus_stats", .socketAddress(Self.socketAddress("127.0.0.1", pc.proxyAdminPort).socketAddress),
      timeout: .init(seconds: 0, nanos: 250_000_000))
    let agent = Self.cluster(
      "agent", .socketAddress(Self.socketAddress("127.0.0.1", pc.statusPort).socketAddress),
      timeout: .init(seconds: 0, nanos: 250_000_000))
    var sds = Self.cluster("sds-grpc", .pipe(Self.pipe(sdsSocketPath)), timeout: .init(seconds: 1))
    try Self.useHTTP2(&sds)
    var xds = Self.cluster("xds-grpc", .pipe(Self.pipe(xdsSocketPath)), timeout: .init(seconds: 1))
    try Self.useHTTP2(&xds, maxRequestsPerConnection: 1)
    var thresholds: [Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds] = []
    for priority in [Envoy_Config_Core_V3_RoutingPriority.default, .high] {
      var t = Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds()
      t.priority = priority
      t.maxConnections = .init(100_000)
      t.maxPendingRequests = .init(100_000)
      t.maxRequests = .init(100_000)
      thresholds.append(t)
    }
    xds.circuitBreakers.thresholds = thresholds
    xds.upstreamConnectionOptions.tcpKeepalive.keepaliveTime = .init(300)
    return [prometheus, agent, sds, xds]
  }

  package func healthListener() throws -> Envoy_Config_Listener_V3_Listener {
    var route = Envoy_Config_Route_V3_Route()
    route.match.prefix = "/healthz/ready"
    route.route.cluster = "agent"
    var vhost = Envoy_Config_Route_V3_VirtualHost()
    vhost.name = "backend"
    vhost.domains = ["*"]
    vhost.routes = [route]
    typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager
    var hcm = HCM()
    hcm.codecType = .auto
    hcm.statPrefix = "agent"
    hcm.routeConfig.virtualHosts = [vhost]
    var router = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
    router.name = "envoy.filters.http.router"
    router.typedConfig = try Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Router_V3_Router())
    hcm.httpFilters = [router]
    var filter = Envoy_Config_Listener_V3_Filter()
    filter.name = "envoy.filters.network.http_connection_manager"
    filter.typedConfig = try Google_Protobuf_Any(message: hcm)
    var chain = Envoy_Config_Listener_V3_FilterChain()
    chain.filters = [filter]
    var listener = Envoy_Config_Listener_V3_Listener()
    listener.name = "0.0.0.0_\(envoyStatusPort)"
    listener.address = Self.socketAddress("0.0.0.0", envoyStatusPort)
    listener.filterChains = [chain]
    listener.ignoreGlobalConnLimit = true
    listener.bypassOverloadManager = true
    return listener
  }

  // MARK: - Output

  /// Proto3 JSON, pretty-printed with sorted keys (stable for golden files and diffs).
  package func json() throws(AgentError) -> String {
    EnvoyAPIMessageTypes.registerWithAny()
    let b = try bootstrap()
    do {
      let compact = try b.jsonUTF8Data()
      let object = try JSONSerialization.jsonObject(with: compact)
      let pretty = try JSONSerialization.data(
        withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
      // Foundation prints empty containers over two lines; fold them.
      let text = String(decoding: pretty, as: UTF8.self)
        .replacingOccurrences(of: #"\{\n\s*\n\s*\}"#, with: "{}", options: .regularExpression)
        .replacingOccurrences(of: #"\[\n\s*\n\s*\]"#, with: "[]", options: .regularExpression)
      return text + "\n"
    } catch {
      throw AgentError(.bootstrap, "cannot serialize the bootstrap", cause: error)
    }
  }

  /// Writes `<configPath>/envoy-rev.json` (relative to `root`) and returns its path.
  @discardableResult
  package func write(root: String = ".") throws(AgentError) -> String {
    let dir = PodMetadata.join(root, pod.proxyConfig.configPath)
    let path = PodMetadata.join(dir, "envoy-rev.json")
    let text = try json()
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw AgentError(.bootstrap, "\(path): cannot write the bootstrap", cause: error)
    }
    return path
  }

  // MARK: - Helpers

  static func socketAddress(_ host: String, _ port: Int) -> Envoy_Config_Core_V3_Address {
    var s = Envoy_Config_Core_V3_SocketAddress()
    s.address = host
    s.portValue = UInt32(port)
    var a = Envoy_Config_Core_V3_Address()
    a.socketAddress = s
    return a
  }

  static func pipe(_ path: String) -> Envoy_Config_Core_V3_Pipe {
    var p = Envoy_Config_Core_V3_Pipe()
    p.path = path
    return p
  }

  static func cluster(
    _ name: String, _ address: Envoy_Config_Core_V3_Address.OneOf_Address,
    timeout: Google_Protobuf_Duration
  ) -> Envoy_Config_Cluster_V3_Cluster {
    var c = Envoy_Config_Cluster_V3_Cluster()
    c.name = name
    c.type = .static
    c.connectTimeout = timeout
    var addr = Envoy_Config_Core_V3_Address()
    addr.address = address
    var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
    endpoint.endpoint.address = addr
    var locality = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
    locality.lbEndpoints = [endpoint]
    c.loadAssignment.clusterName = name
    c.loadAssignment.endpoints = [locality]
    return c
  }

  static func useHTTP2(_ c: inout Envoy_Config_Cluster_V3_Cluster, maxRequestsPerConnection: UInt32? = nil)
    throws
  {
    var options = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions()
    options.explicitHTTPConfig.http2ProtocolOptions = .init()
    if let maxRequestsPerConnection {
      options.commonHTTPProtocolOptions.maxRequestsPerConnection = .init(maxRequestsPerConnection)
    }
    c.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] =
      try Google_Protobuf_Any(message: options)
  }

  static func protobufStruct(_ object: some Sequence<(key: String, value: JSONValue)>)
    -> Google_Protobuf_Struct
  {
    Google_Protobuf_Struct(
      fields: Dictionary(uniqueKeysWithValues: object.map { ($0.key, protobufValue($0.value)) }))
  }

  /// A JSON object of strings, keys sorted.
  static func stringObject(_ map: [String: String]) -> JSONValue {
    .object(
      JSONValue.Object(
        uniqueKeysWithValues: map.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
  }

  static func protobufValue(_ v: JSONValue) -> Google_Protobuf_Value {
    switch v {
    case .null:
      var value = Google_Protobuf_Value()
      value.nullValue = .nullValue
      return value
    case .bool(let b): return Google_Protobuf_Value(boolValue: b)
    case .number(let n): return Google_Protobuf_Value(numberValue: Double(n) ?? 0)
    case .string(let s): return Google_Protobuf_Value(stringValue: s)
    case .array(let a):
      return Google_Protobuf_Value(listValue: Google_Protobuf_ListValue(values: a.map(protobufValue)))
    case .object(let o): return Google_Protobuf_Value(structValue: protobufStruct(o))
    }
  }
}
