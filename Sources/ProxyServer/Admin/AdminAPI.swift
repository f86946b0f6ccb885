internal import EnvoyAPI
internal import Logging
internal import NIOCore
internal import ProxyCore
internal import SwiftProtobuf

/// One admin request, already read.
struct AdminRequest: Sendable {
  var method: String
  var path: String
  var query: [(String, String?)]

  init(method: String, uri: String, body: String) {
    self.method = method
    let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    path = String(parts[0])
    query = []
    if parts.count > 1 {
      for item in parts[1].split(separator: "&") where !item.isEmpty {
        let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        query.append((Self.percentDecode(kv[0]), kv.count > 1 ? Self.percentDecode(kv[1]) : nil))
      }
    }
  }

  func has(_ name: String) -> Bool { query.contains { $0.0 == name } }
  func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 ?? nil }

  static func percentDecode(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var i = text.utf8.startIndex
    let utf8 = text.utf8
    while i < utf8.endIndex {
      let c = utf8[i]
      if c == UInt8(ascii: "%"),
        let h = utf8.index(i, offsetBy: 2, limitedBy: utf8.index(before: utf8.endIndex)),
        let v = UInt8(String(decoding: utf8[utf8.index(after: i)...h], as: UTF8.self), radix: 16)
      {
        bytes.append(v)
        i = utf8.index(after: h)
      } else {
        bytes.append(c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
        i = utf8.index(after: i)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

struct AdminResponse: Sendable {
  var status: Int
  var contentType: String
  var body: String
  /// Runs after the response is written (e.g. /quitquitquit's shutdown).
  var afterSend: (@Sendable () -> Void)?

  static func text(_ body: String, status: Int = 200) -> AdminResponse {
    AdminResponse(status: status, contentType: "text/plain; charset=UTF-8", body: body)
  }

  static func json(_ body: String, status: Int = 200) -> AdminResponse {
    AdminResponse(status: status, contentType: "application/json", body: body)
  }
}

/// Envoy's admin endpoints in Envoy's formats (pilot-agent and istioctl parse them). Mutating endpoints
/// require POST, as in Envoy.
struct AdminAPI: Sendable {
  let server: ProxyServer

  private static let mutating: Set<String> = [
    "/quitquitquit", "/drain_listeners", "/healthcheck/fail", "/healthcheck/ok", "/logging",
    "/reset_counters",
    "/runtime_modify", "/reopen_logs",
  ]

  private static let help: [(String, String)] = [
    ("/", "admin home page"), ("/clusters", "upstream cluster status"),
    ("/config_dump", "dump current Envoy configs"),
    ("/drain_listeners", "drain listeners (POST; inboundonly, graceful)"),
    ("/healthcheck/fail", "cause the server to fail health checks (POST)"),
    ("/healthcheck/ok", "cause the server to pass health checks (POST)"),
    ("/help", "print out list of admin commands"),
    ("/listeners", "print listener info"), ("/logging", "query/change logging levels (POST)"),
    ("/memory", "print current allocation/heap usage"), ("/quitquitquit", "exit the server (POST)"),
    ("/ready", "print server state, return 200 if LIVE, otherwise return 503"),
    ("/reset_counters", "reset all counters to zero (POST)"),
    ("/server_info", "print server version/status information"),
    ("/stats", "print server stats"), ("/stats/prometheus", "print server stats in prometheus format"),
  ]

  func handle(_ request: AdminRequest) -> AdminResponse {
    if Self.mutating.contains(request.path) && request.method != "POST" {
      return .text("This endpoint requires POST.\n", status: 405)
    }
    switch request.path {
    case "/ready":
      let state = server.state.state
      return .text(state.name + "\n", status: state == .live ? 200 : 503)
    case "/stats":
      switch request.value("format") {
      case "json"?: return stats(request, format: .json)
      case "prometheus"?: return stats(request, format: .prometheus)
      case nil, "text"?: return stats(request, format: .text)
      case let other?: return .text("unsupported format \(other)\n", status: 400)
      }
    case "/stats/prometheus":
      return stats(request, format: .prometheus)
    case "/server_info":
      return .json(serverInfo())
    case "/config_dump":
      return configDump(request)
    case "/clusters":
      return request.value("format") == "json" ? .json(clustersJSON()) : .text(clustersText())
    case "/listeners":
      return request.value("format") == "json" ? .json(listenersJSON()) : .text(listenersText())
    case "/healthcheck/fail":
      server.state.setHealthCheckFailed(true)
      server.drainListeners(inboundOnly: false, graceful: true)
      return .text("OK\n")
    case "/healthcheck/ok":
      server.state.setHealthCheckFailed(false)
      return .text("OK\n")
    case "/drain_listeners":
      server.drainListeners(inboundOnly: request.has("inboundonly"), graceful: request.has("graceful"))
      return .text("OK\n")
    case "/quitquitquit":
      var response = AdminResponse.text("OK\n")
      let server = self.server
      response.afterSend = { server.requestShutdown(reason: "/quitquitquit") }
      return response
    case "/logging":
      return logging(request)
    case "/reset_counters":
      server.stats.resetCounters()
      return .text("OK\n")
    case "/memory":
      return .json(memory())
    case "/help", "/":
      return .text(
        "admin commands are:\n" + Self.help.map { "  \($0.0): \($0.1)" }.joined(separator: "\n") + "\n")
    default:
      return .text(
        "invalid path. admin commands are:\n" + Self.help.map { "  \($0.0)" }.joined(separator: "\n") + "\n",
        status: 404)
    }
  }

  enum StatsFormat { case text, json, prometheus }

  private func stats(_ request: AdminRequest, format: StatsFormat) -> AdminResponse {
    server.state.refreshSampledGauges(connections: server.context.connections.count)
    var filter: StatsFilter?
    if let text = request.value("filter"), !text.isEmpty {
      do {
        filter = try StatsStore.compileFilter(text)
      } catch {
        return .text("Invalid re2 regex: \(text)\n", status: 400)
      }
    }
    let usedOnly = request.has("usedonly")
    switch format {
    case .text:
      return .text(server.stats.renderText(usedOnly: usedOnly, filter: filter))
    case .json:
      return .json(server.stats.renderJSON(usedOnly: usedOnly, filter: filter))
    case .prometheus:
      return AdminResponse(
        status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
        body: server.stats.renderPrometheus(usedOnly: usedOnly, filter: filter))
    }
  }

  private func logging(_ request: AdminRequest) -> AdminResponse {
    let control = server.logLevels
    if let level = request.value("level") {
      guard let parsed = LogLevelControl.parse(level) else {
        return .text("error: unknown level \(level)\n", status: 400)
      }
      control.setAll(parsed)
    } else if let paths = request.value("paths") {
      for item in paths.split(separator: ",") {
        let kv = item.split(separator: ":")
        guard kv.count == 2, let level = LogLevelControl.parse(String(kv[1])),
          control.set(String(kv[0]), level)
        else {
          return .text("error: invalid paths entry \(item)\n", status: 400)
        }
      }
    } else {
      for (name, value) in request.query {
        guard let value, let level = LogLevelControl.parse(value), control.set(name, level) else {
          return .text("error: invalid logger or level \(name)=\(value ?? "")\n", status: 400)
        }
      }
    }
    let lines = control.snapshot.map { "  \($0.0): \(LogLevelControl.envoyName($0.1))" }
    return .text("active loggers:\n" + lines.joined(separator: "\n") + "\n")
  }

  private func memory() -> String {
    let usage = ServerState.memoryUsage()
    var memory = Envoy_Admin_V3_Memory()
    memory.allocated = usage.allocated
    memory.heapSize = usage.heap
    memory.totalPhysicalBytes = usage.resident
    return Self.json(memory)
  }

  private func serverInfo() -> String {
    var info = Envoy_Admin_V3_ServerInfo()
    info.version = "pilotfish/0.1.0/Clean/RELEASE/BoringSSL"
    switch server.state.state {
    case .live: info.state = .live
    case .draining: info.state = .draining
    case .preInitializing: info.state = .preInitializing
    case .initializing: info.state = .initializing
    }
    info.uptimeCurrentEpoch.seconds = Int64(server.state.uptimeSeconds)
    info.uptimeAllEpochs.seconds = Int64(server.state.uptimeSeconds)
    info.hotRestartVersion = "disabled"
    var cli = Envoy_Admin_V3_CommandLineOptions()
    let options = server.options
    cli.concurrency = UInt32(server.concurrency)
    cli.configPath = options.configPath ?? ""
    cli.configYaml = options.configYAML ?? ""
    cli.allowUnknownStaticFields = options.allowUnknownStaticFields
    cli.localAddressIpVersion = options.localAddressIPVersion == .v6 ? .v6 : .v4
    cli.logLevel = options.logLevel.rawValue
    cli.logFormat = options.logFormat ?? ""
    cli.serviceCluster = options.serviceCluster ?? ""
    cli.serviceNode = options.serviceNode ?? ""
    cli.serviceZone = options.serviceZone ?? ""
    cli.mode = .serve
    cli.disableHotRestart = options.disableHotRestart
    cli.restartEpoch = options.restartEpoch
    cli.drainTime.seconds = Int64(clamping: options.drainTimeSeconds)
    cli.parentShutdownTime.seconds = Int64(clamping: options.parentShutdownTimeSeconds)
    cli.drainStrategy = options.drainStrategy == .immediate ? .immediate : .gradual
    cli.fileFlushInterval.seconds = Int64(clamping: options.fileFlushIntervalMilliseconds / 1000)
    cli.fileFlushInterval.nanos = Int32((options.fileFlushIntervalMilliseconds % 1000) * 1_000_000)
    info.commandLineOptions = cli
    info.node = server.bootstrap.node
    // proto3 JSON omits enum zero values; Envoy prints every field of ServerInfo, and tools read `state`.
    var text = Self.json(info)
    if info.state == .live, !text.contains("\"state\"") { text = "{\"state\":\"LIVE\"," + text.dropFirst() }
    return text
  }

  /// `/config_dump` with `include_eds`, and `resource`, `mask`, `name_regex` (see `ConfigDumpQuery`).
  private func configDump(_ request: AdminRequest) -> AdminResponse {
    let query: ConfigDumpQuery
    do {
      query = try ConfigDumpQuery(
        resource: request.value("resource"), mask: request.value("mask"),
        nameRegex: request.value("name_regex"))
    } catch {
      return .text(error.message + "\n", status: error.status)
    }
    let includeEDS = request.has("include_eds")
    EnvoyAPIMessageTypes.registerWithAny()
    var dump = Envoy_Admin_V3_ConfigDump()
    var dumpTypes: [any Message.Type] = [
      Envoy_Admin_V3_BootstrapConfigDump.self, Envoy_Admin_V3_ClustersConfigDump.self,
      Envoy_Admin_V3_ListenersConfigDump.self, Envoy_Admin_V3_RoutesConfigDump.self,
      Envoy_Admin_V3_SecretsConfigDump.self,
    ]
    if includeEDS { dumpTypes.append(Envoy_Admin_V3_EndpointsConfigDump.self) }
    do {
      var bootstrapDump = Envoy_Admin_V3_BootstrapConfigDump()
      bootstrapDump.bootstrap = server.bootstrap
      bootstrapDump.lastUpdated = Google_Protobuf_Timestamp(date: .init())
      dump.configs.append(try Google_Protobuf_Any(message: bootstrapDump))
      var clusters = Envoy_Admin_V3_ClustersConfigDump()
      for proto in server.bootstrap.staticResources.clusters {
        var entry = Envoy_Admin_V3_ClustersConfigDump.StaticCluster()
        entry.cluster = try Google_Protobuf_Any(message: proto)
        entry.lastUpdated = bootstrapDump.lastUpdated
        clusters.staticClusters.append(entry)
      }
      let dynamic = server.dynamic
      clusters.versionInfo = dynamic.versionInfo(.cluster)
      let warmingClusters = Set(server.clusterManager.warming.map(\.name))
      for (name, accepted) in dynamic.accepted(.cluster).sorted(by: { $0.key < $1.key }) {
        var entry = Envoy_Admin_V3_ClustersConfigDump.DynamicCluster()
        entry.versionInfo = accepted.version
        entry.cluster = accepted.resource
        entry.lastUpdated = Google_Protobuf_Timestamp(date: accepted.lastUpdated)
        if warmingClusters.contains(name) {
          clusters.dynamicWarmingClusters.append(entry)
        } else {
          clusters.dynamicActiveClusters.append(entry)
        }
      }
      dump.configs.append(try Google_Protobuf_Any(message: clusters))
      if includeEDS {
        var endpoints = Envoy_Admin_V3_EndpointsConfigDump()
        for proto in server.bootstrap.staticResources.clusters where proto.hasLoadAssignment {
          var entry = Envoy_Admin_V3_EndpointsConfigDump.StaticEndpointConfig()
          var assignment = proto.loadAssignment
          if assignment.clusterName.isEmpty { assignment.clusterName = proto.name }
          entry.endpointConfig = try Google_Protobuf_Any(message: assignment)
          endpoints.staticEndpointConfigs.append(entry)
        }
        for (_, accepted) in dynamic.accepted(.endpoint).sorted(by: { $0.key < $1.key }) {
          var entry = Envoy_Admin_V3_EndpointsConfigDump.DynamicEndpointConfig()
          entry.versionInfo = accepted.version
          entry.endpointConfig = accepted.resource
          entry.lastUpdated = Google_Protobuf_Timestamp(date: accepted.lastUpdated)
          endpoints.dynamicEndpointConfigs.append(entry)
        }
        dump.configs.append(try Google_Protobuf_Any(message: endpoints))
      }
      var listeners = Envoy_Admin_V3_ListenersConfigDump()
      for proto in server.bootstrap.staticResources.listeners {
        var entry = Envoy_Admin_V3_ListenersConfigDump.StaticListener()
        entry.listener = try Google_Protobuf_Any(message: proto)
        entry.lastUpdated = bootstrapDump.lastUpdated
        listeners.staticListeners.append(entry)
      }
      listeners.versionInfo = dynamic.versionInfo(.listener)
      let warmingListeners = Set(server.listenerManager.warmingListeners.map(\.name))
      for (name, accepted) in dynamic.accepted(.listener).sorted(by: { $0.key < $1.key }) {
        var entry = Envoy_Admin_V3_ListenersConfigDump.DynamicListener()
        entry.name = name
        var state = Envoy_Admin_V3_ListenersConfigDump.DynamicListenerState()
        state.versionInfo = accepted.version
        state.listener = accepted.resource
        state.lastUpdated = Google_Protobuf_Timestamp(date: accepted.lastUpdated)
        if warmingListeners.contains(name) {
          entry.warmingState = state
        } else {
          entry.activeState = state
        }
        listeners.dynamicListeners.append(entry)
      }
      dump.configs.append(try Google_Protobuf_Any(message: listeners))
      var routes = Envoy_Admin_V3_RoutesConfigDump()
      for (_, accepted) in dynamic.accepted(.route).sorted(by: { $0.key < $1.key }) {
        var entry = Envoy_Admin_V3_RoutesConfigDump.DynamicRouteConfig()
        entry.versionInfo = accepted.version
        entry.routeConfig = accepted.resource
        entry.lastUpdated = Google_Protobuf_Timestamp(date: accepted.lastUpdated)
        routes.dynamicRouteConfigs.append(entry)
      }
      dump.configs.append(try Google_Protobuf_Any(message: routes))
      dump.configs.append(try Google_Protobuf_Any(message: Envoy_Admin_V3_SecretsConfigDump()))
    } catch {
      return .text("cannot build the config dump: \(error)\n", status: 500)
    }
    let text = Self.json(dump)
    if query.isPlain { return .json(text) }
    do {
      return .json(try query.apply(to: text, dumpTypes: dumpTypes))
    } catch {
      return .text(error.message + "\n", status: error.status)
    }
  }

  private func clustersText() -> String {
    var out = ""
    for cluster in server.clusterManager.all {
      let name = cluster.name
      let config = cluster.config
      out += "\(name)::observability_name::\(config.statName)\n"
      for (priority, t) in [
        ("default_priority", config.defaultThresholds), ("high_priority", config.highThresholds),
      ] {
        out += "\(name)::\(priority)::max_connections::\(t.maxConnections)\n"
        out += "\(name)::\(priority)::max_pending_requests::\(t.maxPendingRequests)\n"
        out += "\(name)::\(priority)::max_requests::\(t.maxRequests)\n"
        out += "\(name)::\(priority)::max_retries::\(t.maxRetries)\n"
      }
      out += "\(name)::added_via_api::\(config.addedViaAPI)\n"
      if case .eds(let service) = config.discovery { out += "\(name)::eds_service_name::\(service)\n" }
      for host in cluster.hosts {
        let prefix = "\(name)::\(host.address)"
        out += "\(prefix)::cx_active::\(host.connectionsActive.load(ordering: .relaxed))\n"
        out += "\(prefix)::cx_connect_fail::\(host.connectFailures.load(ordering: .relaxed))\n"
        out += "\(prefix)::cx_total::\(host.connectionsTotal.load(ordering: .relaxed))\n"
        out += "\(prefix)::rq_active::\(host.requestsActive.load(ordering: .relaxed))\n"
        out += "\(prefix)::rq_error::\(host.requestErrors.load(ordering: .relaxed))\n"
        out += "\(prefix)::rq_success::\(host.requestSuccesses.load(ordering: .relaxed))\n"
        out += "\(prefix)::rq_timeout::\(host.requestTimeouts.load(ordering: .relaxed))\n"
        out += "\(prefix)::rq_total::\(host.requestsTotal.load(ordering: .relaxed))\n"
        out += "\(prefix)::hostname::\(host.hostname)\n"
        out += "\(prefix)::health_flags::\(host.healthy ? "healthy" : "/failed_eds_health")\n"
        out += "\(prefix)::weight::\(host.weight)\n"
        out += "\(prefix)::region::\(host.region)\n"
        out += "\(prefix)::zone::\(host.zone)\n"
        out += "\(prefix)::sub_zone::\(host.subZone)\n"
        out += "\(prefix)::canary::false\n"
        out += "\(prefix)::priority::\(host.priority)\n"
        out += "\(prefix)::success_rate::-1\n"
        out += "\(prefix)::local_origin_success_rate::-1\n"
      }
    }
    return out
  }

  private func clustersJSON() -> String {
    var clusters = Envoy_Admin_V3_Clusters()
    for cluster in server.clusterManager.all {
      var status = Envoy_Admin_V3_ClusterStatus()
      status.name = cluster.name
      status.observabilityName = cluster.config.statName
      status.addedViaApi = cluster.config.addedViaAPI
      if case .eds(let service) = cluster.config.discovery { status.edsServiceName = service }
      var thresholds = Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds()
      thresholds.maxConnections.value = UInt32(clamping: cluster.config.defaultThresholds.maxConnections)
      thresholds.maxPendingRequests.value = UInt32(
        clamping: cluster.config.defaultThresholds.maxPendingRequests)
      thresholds.maxRequests.value = UInt32(clamping: cluster.config.defaultThresholds.maxRequests)
      thresholds.maxRetries.value = UInt32(clamping: cluster.config.defaultThresholds.maxRetries)
      status.circuitBreakers.thresholds = [thresholds]
      for host in cluster.hosts {
        var hostStatus = Envoy_Admin_V3_HostStatus()
        hostStatus.address = Self.address(host.address)
        func metric(_ name: String, _ value: UInt64, gauge: Bool = false) -> Envoy_Admin_V3_SimpleMetric {
          var m = Envoy_Admin_V3_SimpleMetric()
          m.name = name
          m.value = value
          m.type = gauge ? .gauge : .counter
          return m
        }
        hostStatus.stats = [
          metric("cx_connect_fail", host.connectFailures.load(ordering: .relaxed)),
          metric("cx_total", host.connectionsTotal.load(ordering: .relaxed)),
          metric("rq_error", host.requestErrors.load(ordering: .relaxed)),
          metric("rq_success", host.requestSuccesses.load(ordering: .relaxed)),
          metric("rq_timeout", host.requestTimeouts.load(ordering: .relaxed)),
          metric("rq_total", host.requestsTotal.load(ordering: .relaxed)),
          metric("cx_active", UInt64(max(0, host.connectionsActive.load(ordering: .relaxed))), gauge: true),
          metric("rq_active", UInt64(max(0, host.requestsActive.load(ordering: .relaxed))), gauge: true),
        ]
        hostStatus.healthStatus.edsHealthStatus = host.healthy ? .healthy : .unhealthy
        hostStatus.weight = UInt32(clamping: host.weight)
        hostStatus.priority = UInt32(clamping: host.priority)
        hostStatus.hostname = host.hostname
        hostStatus.locality.region = host.region
        hostStatus.locality.zone = host.zone
        hostStatus.locality.subZone = host.subZone
        status.hostStatuses.append(hostStatus)
      }
      clusters.clusterStatuses.append(status)
    }
    return Self.json(clusters)
  }

  private func listenersText() -> String {
    server.listenerManager.listeners.map { listener in
      "\(listener.name)::\((listener.boundAddress ?? listener.config.address).envoyDescription)\n"
    }.joined()
  }

  private func listenersJSON() -> String {
    var listeners = Envoy_Admin_V3_Listeners()
    for listener in server.listenerManager.listeners {
      var status = Envoy_Admin_V3_ListenerStatus()
      status.name = listener.name
      status.localAddress = Self.address(.socket(listener.boundAddress ?? listener.config.address))
      listeners.listenerStatuses.append(status)
    }
    return Self.json(listeners)
  }

  private static func address(_ address: UpstreamAddress) -> Envoy_Config_Core_V3_Address {
    var out = Envoy_Config_Core_V3_Address()
    switch address {
    case .socket(let socket):
      var s = Envoy_Config_Core_V3_SocketAddress()
      s.address = socket.ipAddress ?? ""
      s.portValue = UInt32(socket.port ?? 0)
      out.socketAddress = s
    case .pipe(let path):
      out.pipe.path = path
    case .dns(let host, let port):
      out.socketAddress.address = host
      out.socketAddress.portValue = UInt32(port)
    }
    return out
  }

  static func json(_ message: some SwiftProtobuf.Message) -> String {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return ((try? message.jsonString(options: options)) ?? "{}") + "\n"
  }
}
