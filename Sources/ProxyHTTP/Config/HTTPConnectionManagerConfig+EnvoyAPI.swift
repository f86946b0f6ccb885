package import EnvoyAPI
internal import NIOCore
package import ProxyCore
internal import SwiftProtobuf

extension HTTPConnectionManagerConfig {
  package typealias Proto = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager

  /// Validates an `http_connection_manager` config. Access-log files are opened now (a bad path fails
  /// here). Paths in errors start inside the HCM (`route_config.virtual_hosts[0]...`).
  package init(_ proto: Proto, accessLog: AccessLogSink) throws(ProxyConfigError) {
    guard !proto.statPrefix.isEmpty else { throw ProxyConfigError("stat_prefix", "must not be empty") }
    switch proto.codecType {
    case .auto, .http1: break
    case .http2: throw ProxyConfigError("codec_type", "HTTP2 is not supported yet (use AUTO or HTTP1)")
    case .http3: throw ProxyConfigError("codec_type", "HTTP3 is not supported")
    case .UNRECOGNIZED(let n): throw ProxyConfigError("codec_type", "unknown codec type \(n)")
    }
    var notes = UnsupportedFieldNotes()
    let routes: RouteConfiguration
    var rdsName: String?
    switch proto.routeSpecifier {
    case .routeConfig(let config)?:
      do {
        routes = try RouteConfiguration(config, notes: &notes)
      } catch {
        throw error.prefixed("route_config")
      }
    case .rds(let rds)?:
      guard !rds.routeConfigName.isEmpty else {
        throw ProxyConfigError("rds.route_config_name", "must not be empty")
      }
      switch rds.configSource.configSourceSpecifier {
      case .ads?, .self_p?: break
      case .apiConfigSource?, .path?, .pathConfigSource?, nil:
        throw ProxyConfigError(
          "rds.config_source", "only ads (the ADS stream) is supported for RDS; use ads: {}")
      }
      rdsName = rds.routeConfigName
      routes = try RouteConfiguration(name: rds.routeConfigName, virtualHosts: [])
    case nil:
      throw ProxyConfigError("", "needs route_config (inline) or rds")
    }
    self.init(statPrefix: proto.statPrefix, routeConfig: routes)
    rdsRouteConfigName = rdsName
    var warnings = notes.warnings.map { ProxyConfigWarning(Self.join("route_config", $0.path), $0.message) }
    try Self.checkHTTPFilters(proto.httpFilters, warnings: &warnings)

    if !proto.serverName.isEmpty {
      guard HTTP1HeadWriter.isValidField(name: "server", value: proto.serverName) else {
        throw ProxyConfigError("server_name", "\"\(proto.serverName)\" is not a valid header value")
      }
      serverName = proto.serverName
    }
    switch proto.serverHeaderTransformation {
    case .overwrite: serverHeaderTransformation = .overwrite
    case .appendIfAbsent: serverHeaderTransformation = .appendIfAbsent
    case .passThrough: serverHeaderTransformation = .passThrough
    case .UNRECOGNIZED(let n): throw ProxyConfigError("server_header_transformation", "unknown value \(n)")
    }
    if proto.hasUseRemoteAddress { useRemoteAddress = proto.useRemoteAddress.value }
    xffNumTrustedHops = Int(proto.xffNumTrustedHops)
    if xffNumTrustedHops > 0 {
      warnings.append(
        ProxyConfigWarning(
          "xff_num_trusted_hops",
          "only used to decide the original client; trusted-hop parsing is not implemented"))
    }
    if proto.hasGenerateRequestID { generateRequestID = proto.generateRequestID.value }
    proxy100Continue = proto.proxy100Continue
    if proto.hasStreamIdleTimeout {
      let t = try DurationConversion.timeAmount(proto.streamIdleTimeout, path: "stream_idle_timeout")
      streamIdleTimeout = t == .zero ? nil : t
    }
    if proto.hasRequestTimeout {
      let t = try DurationConversion.timeAmount(proto.requestTimeout, path: "request_timeout")
      requestTimeout = t == .zero ? nil : t
    }
    if proto.hasDrainTimeout {
      drainTimeout = try DurationConversion.timeAmount(proto.drainTimeout, path: "drain_timeout")
    }
    if proto.hasCommonHTTPProtocolOptions {
      let options = proto.commonHTTPProtocolOptions
      if options.hasIdleTimeout {
        let t = try DurationConversion.timeAmount(
          options.idleTimeout, path: "common_http_protocol_options.idle_timeout")
        idleTimeout = t == .zero ? nil : t
      }
      if options.hasMaxHeadersCount {
        guard options.maxHeadersCount.value >= 1 else {
          throw ProxyConfigError("common_http_protocol_options.max_headers_count", "must be at least 1")
        }
        limits.maxHeaderCount = Int(options.maxHeadersCount.value)
      }
      if options.hasMaxConnectionDuration {
        warnings.append(
          ProxyConfigWarning(
            "common_http_protocol_options.max_connection_duration",
            "max_connection_duration is not enforced yet"))
      }
    }
    if proto.hasMaxRequestHeadersKb {
      let kb = Int(proto.maxRequestHeadersKb.value)
      guard (1...8192).contains(kb) else {
        throw ProxyConfigError("max_request_headers_kb", "must be in [1, 8192]")
      }
      limits.maxHeadBytes = kb * 1024
    }
    for (u, upgrade) in proto.upgradeConfigs.enumerated() {
      guard !upgrade.upgradeType.isEmpty else {
        throw ProxyConfigError("upgrade_configs[\(u)].upgrade_type", "must not be empty")
      }
      if !upgrade.filters.isEmpty {
        throw ProxyConfigError("upgrade_configs[\(u)].filters", "upgrade filter chains are not supported")
      }
      if upgrade.upgradeType.lowercased() == "connect" {
        warnings.append(
          ProxyConfigWarning("upgrade_configs[\(u)]", "CONNECT is not supported; CONNECT requests get 404"))
        continue
      }
      if !upgrade.hasEnabled || upgrade.enabled.value {
        upgradeTypes.insert(upgrade.upgradeType.lowercased())
      }
    }
    switch proto.stripPortMode {
    case .stripAnyHostPort(let on)?: if on { stripPortMode = .any }
    case nil: break
    }
    if proto.stripMatchingHostPort {
      guard stripPortMode == .none else {
        throw ProxyConfigError("strip_matching_host_port", "cannot be combined with strip_any_host_port")
      }
      stripPortMode = .matching
    }
    if proto.hasTracing {
      warnings.append(ProxyConfigWarning("tracing", "tracing is not implemented; ignored"))
    }
    if proto.hasHTTP2ProtocolOptions {
      warnings.append(ProxyConfigWarning("http2_protocol_options", "HTTP/2 is not supported yet; ignored"))
    }
    if proto.hasLocalReplyConfig {
      warnings.append(
        ProxyConfigWarning("local_reply_config", "local reply mapping is not implemented; ignored"))
    }
    if proto.forwardClientCertDetails != .sanitize || proto.hasSetCurrentClientCertDetails {
      warnings.append(
        ProxyConfigWarning(
          "forward_client_cert_details", "x-forwarded-client-cert needs TLS; not implemented yet"))
    }
    if proto.hasDelayedCloseTimeout {
      _ = try DurationConversion.timeAmount(proto.delayedCloseTimeout, path: "delayed_close_timeout")
    }
    if proto.hasRequestHeadersTimeout {
      let t = try DurationConversion.timeAmount(proto.requestHeadersTimeout, path: "request_headers_timeout")
      requestHeadersTimeout = t == .zero ? nil : t
    }
    if proto.mergeSlashes || (proto.hasNormalizePath && proto.normalizePath.value) {
      warnings.append(
        ProxyConfigWarning(
          "normalize_path", "path normalization is not implemented; paths are routed as sent"))
    }
    for (i, log) in proto.accessLog.enumerated() {
      let config = try AccessLogConfig(log, path: "access_log[\(i)]", warnings: &warnings)
      try AccessLogFormat.validate(config, path: "access_log[\(i)]")
      do {
        try accessLog.open(config.path)
      } catch {
        throw error.prefixed("access_log[\(i)].typed_config")
      }
      accessLogs.append(config)
    }
    self.warnings = warnings
  }

  private static func join(_ a: String, _ b: String) -> String {
    b.isEmpty ? a : b.hasPrefix("[") ? a + b : a + "." + b
  }

  static let routerType = Envoy_Extensions_Filters_Http_Router_V3_Router.protoMessageName
  /// Envoy HTTP filters that may be skipped without changing what is allowed through: they add
  /// headers, stats or browser hints, or (fault) only act when configured to. Skipped with a warning.
  static let skippableFilters: [String: String] = [
    Envoy_Extensions_Filters_Http_Cors_V3_Cors.protoMessageName: "envoy.filters.http.cors",
    Envoy_Extensions_Filters_Http_GrpcStats_V3_FilterConfig.protoMessageName: "envoy.filters.http.grpc_stats",
    Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault.protoMessageName: "envoy.filters.http.fault",
  ]
  /// Filter names Envoy accepts without typed_config.
  static let typesByName: [String: String] = [
    "envoy.filters.http.router": routerType, "envoy.router": routerType,
    "envoy.filters.http.cors": Envoy_Extensions_Filters_Http_Cors_V3_Cors.protoMessageName,
    "envoy.cors": Envoy_Extensions_Filters_Http_Cors_V3_Cors.protoMessageName,
    "envoy.filters.http.grpc_stats": Envoy_Extensions_Filters_Http_GrpcStats_V3_FilterConfig.protoMessageName,
    "envoy.filters.http.fault": Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault.protoMessageName,
    "envoy.fault": Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault.protoMessageName,
  ]

  /// The router must be last; Istio's filters and the harmless ones above are skipped with a warning;
  /// anything else (authz, authn, Lua, Wasm …) is an error naming it, because skipping it could let
  /// through what the operator meant to stop.
  static func checkHTTPFilters(
    _ filters: [Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter],
    warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    guard !filters.isEmpty else {
      throw ProxyConfigError("http_filters", "needs the router filter (envoy.filters.http.router) last")
    }
    for (i, filter) in filters.enumerated() {
      let path = "http_filters[\(i)]"
      var typeURL = ""
      var hasConfig = false
      if case .typedConfig(let any)? = filter.configType {
        typeURL = ExtensionTypes.effectiveTypeURL(any)
        hasConfig = !any.value.isEmpty
      }
      var typeName = typeURL.isEmpty ? (typesByName[filter.name] ?? "") : ExtensionTypes.messageName(typeURL)
      if typeName.isEmpty, filter.name.hasPrefix("istio.") { typeName = filter.name }
      let isLast = i == filters.count - 1
      if typeName == routerType {
        guard isLast else { throw ProxyConfigError(path, "the router filter must be the last HTTP filter") }
        continue
      }
      if isLast {
        throw ProxyConfigError(
          path, "the last HTTP filter must be the router (envoy.filters.http.router), not \"\(filter.name)\"")
      }
      if ExtensionTypes.isIstioExtension(typeName) || filter.name.hasPrefix("istio.") {
        warnings.append(ProxyConfigWarning(path, "Istio HTTP filter \(typeName) accepted and skipped"))
        continue
      }
      if let name = skippableFilters[typeName] {
        if name == "envoy.filters.http.fault" && hasConfig {
          throw ProxyConfigError(
            path + ".typed_config", "the fault filter with abort/delay config is not supported yet")
        }
        warnings.append(ProxyConfigWarning(path, "HTTP filter \(name) is not implemented yet; skipped"))
        continue
      }
      if filter.isOptional {
        warnings.append(
          ProxyConfigWarning(
            path, "optional HTTP filter \"\(filter.name)\" (\(typeName)) is not supported; skipped"))
        continue
      }
      if typeName.isEmpty {
        throw ProxyConfigError(path, "HTTP filter \"\(filter.name)\" needs a typed_config")
      }
      throw ProxyConfigError(
        path + ".typed_config", "unsupported HTTP filter \"\(filter.name)\" (\(typeName))")
    }
  }
}
