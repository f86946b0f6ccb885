package import EnvoyAPI
package import NIOCore
package import SwiftProtobuf

extension TcpProxyConfig {
  /// Validates a tcp_proxy config. Access-log files are opened now, so a bad path fails here.
  package init(
    _ proto: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy, accessLog: AccessLogSink
  ) throws(ProxyConfigError) {
    guard !proto.statPrefix.isEmpty else { throw ProxyConfigError("stat_prefix", "must not be empty") }
    let route: Route
    switch proto.clusterSpecifier {
    case .cluster(let name)?:
      guard !name.isEmpty else { throw ProxyConfigError("cluster", "must not be empty") }
      route = .cluster(name)
    case .weightedClusters(let weighted)?:
      guard !weighted.clusters.isEmpty else {
        throw ProxyConfigError("weighted_clusters.clusters", "needs at least one cluster")
      }
      var clusters: [(name: String, weight: Int)] = []
      for (i, cluster) in weighted.clusters.enumerated() {
        guard !cluster.name.isEmpty else {
          throw ProxyConfigError("weighted_clusters.clusters[\(i)].name", "must not be empty")
        }
        guard cluster.weight >= 1 else {
          throw ProxyConfigError("weighted_clusters.clusters[\(i)].weight", "must be at least 1")
        }
        clusters.append((cluster.name, Int(cluster.weight)))
      }
      route = .weighted(clusters)
    case nil:
      throw ProxyConfigError("", "tcp_proxy needs cluster or weighted_clusters")
    }
    self.init(statPrefix: proto.statPrefix, route: route)
    if proto.hasIdleTimeout {
      let timeout = try DurationConversion.timeAmount(proto.idleTimeout, path: "idle_timeout")
      idleTimeout = timeout == .zero ? nil : timeout
    }
    if proto.hasMaxConnectAttempts {
      guard proto.maxConnectAttempts.value >= 1 else {
        throw ProxyConfigError("max_connect_attempts", "must be at least 1")
      }
      maxConnectAttempts = Int(proto.maxConnectAttempts.value)
    }
    if proto.hasTunnelingConfig {
      throw ProxyConfigError("tunneling_config", "tunneling over HTTP is not supported")
    }
    for (i, log) in proto.accessLog.enumerated() {
      let config = try AccessLogConfig(log, path: "access_log[\(i)]")
      try AccessLogFormat.validate(config.format, path: "access_log[\(i)]")
      do {
        try accessLog.open(config.path)
      } catch {
        throw error.prefixed("access_log[\(i)].typed_config")
      }
      accessLogs.append(config)
    }
  }
}

extension AccessLogConfig {
  /// A file access logger; other logger types are rejected by name.
  package init(_ proto: Envoy_Config_Accesslog_V3_AccessLog, path: String) throws(ProxyConfigError) {
    guard case .typedConfig(let any)? = proto.configType else {
      throw ProxyConfigError(path, "access log \"\(proto.name)\" needs a typed_config")
    }
    guard any.isA(Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog.self) else {
      throw ProxyConfigError(path + ".typed_config", "unsupported access logger type \"\(any.typeURL)\"")
    }
    let file: Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog
    do {
      file = try Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog(unpackingAny: any)
    } catch {
      throw ProxyConfigError(path + ".typed_config", "cannot decode FileAccessLog: \(error)")
    }
    guard !file.path.isEmpty else { throw ProxyConfigError(path + ".typed_config.path", "must not be empty") }
    var format = AccessLogConfig.defaultFormat
    switch file.accessLogFormat {
    case .format(let text)?:
      if !text.isEmpty { format = text }
    case .logFormat(let substitution)?:
      switch substitution.format {
      case .textFormat(let text)?: format = text
      case .textFormatSource(let source)?:
        guard case .inlineString(let text)? = source.specifier else {
          throw ProxyConfigError(
            path + ".typed_config.log_format.text_format_source", "only inline_string is supported")
        }
        format = text
      case .jsonFormat?:
        throw ProxyConfigError(
          path + ".typed_config.log_format.json_format", "JSON access logs are not supported")
      case nil: break
      }
    case .jsonFormat?, .typedJsonFormat?:
      throw ProxyConfigError(path + ".typed_config", "JSON access logs are not supported")
    case nil:
      break
    }
    self.init(path: file.path, format: format)
  }
}

extension AccessLogFormat {
  static func validate(_ format: String, path: String) throws(ProxyConfigError) {
    do {
      _ = try AccessLogFormat(format)
    } catch {
      throw error.prefixed(path + ".typed_config.log_format")
    }
  }
}

/// protobuf Duration → TimeAmount, rejecting negative values.
package enum DurationConversion {
  package static func timeAmount(_ duration: Google_Protobuf_Duration, path: String) throws(ProxyConfigError)
    -> TimeAmount
  {
    guard duration.seconds >= 0, duration.nanos >= 0 else {
      throw ProxyConfigError(path, "must not be negative")
    }
    // TimeAmount counts Int64 nanoseconds (about 292 years); proto3 allows durations up to 10,000 years.
    let (scaled, overflow) = duration.seconds.multipliedReportingOverflow(by: 1_000_000_000)
    let (nanoseconds, overflowNanos) = scaled.addingReportingOverflow(Int64(duration.nanos))
    guard !overflow, !overflowNanos else {
      throw ProxyConfigError(
        path, "\(duration.seconds)s is too large (at most \(Int64.max / 1_000_000_000)s)")
    }
    return .nanoseconds(nanoseconds)
  }
}
