package import EnvoyAPI
package import NIOCore
package import SwiftProtobuf

extension TcpProxyConfig {
  /// Validates a tcp_proxy config. Access-log files are opened now, so a bad path fails here. Access-log
  /// filters accepted but not evaluated are reported in `warnings`.
  package init(
    _ proto: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy, accessLog: AccessLogSink,
    warnings: inout [ProxyConfigWarning]
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
      let config = try AccessLogConfig(log, path: "access_log[\(i)]", warnings: &warnings)
      try AccessLogFormat.validate(config, path: "access_log[\(i)]")
      do {
        try accessLog.open(config.path)
      } catch {
        throw error.prefixed("access_log[\(i)].typed_config")
      }
      accessLogs.append(config)
    }
  }
}

extension AccessLogFormat {
  /// Compiles the format now, so that an unknown operator fails the configuration.
  package static func validate(_ config: AccessLogConfig, path: String) throws(ProxyConfigError) {
    do {
      _ = try AccessLogFormat(config.format, omitEmptyValues: config.omitEmptyValues)
    } catch {
      throw error.prefixed(path + ".typed_config.log_format")
    }
  }
}

/// protobuf Duration → TimeAmount, rejecting negative values and values a 64-bit nanosecond count cannot
/// hold (about 292 years; protobuf allows 10,000 years, and a bootstrap or an xDS push is untrusted input).
package enum DurationConversion {
  /// The largest whole number of seconds that, with any `nanos`, fits in `Int64` nanoseconds.
  package static let maxSeconds: Int64 = Int64.max / 1_000_000_000 - 1

  package static func timeAmount(_ duration: Google_Protobuf_Duration, path: String) throws(ProxyConfigError)
    -> TimeAmount
  {
    guard let value = checkedTimeAmount(duration) else {
      if duration.seconds < 0 || duration.nanos < 0 { throw ProxyConfigError(path, "must not be negative") }
      throw ProxyConfigError(
        path, "\(duration.seconds)s is out of range (at most \(maxSeconds)s, and nanos below 1e9)")
    }
    return value
  }

  /// The duration as a TimeAmount, or nil when it is negative or out of range.
  package static func checkedTimeAmount(_ duration: Google_Protobuf_Duration) -> TimeAmount? {
    guard duration.seconds >= 0, duration.seconds <= maxSeconds, duration.nanos >= 0,
      duration.nanos < 1_000_000_000
    else { return nil }
    return .nanoseconds(duration.seconds * 1_000_000_000 + Int64(duration.nanos))
  }
}
