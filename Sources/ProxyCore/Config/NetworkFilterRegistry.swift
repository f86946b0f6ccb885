package import EnvoyAPI
package import SwiftProtobuf
internal import Synchronization

/// Turns a network filter's `typed_config` into the terminal filter that serves connections. ProxyCore
/// registers tcp_proxy; the HTTP layer registers the HTTP connection manager. The composition root owns
/// the registry.
package struct NetworkFilterRegistry: Sendable {
  /// Builds a filter from its config; `path` is for errors inside the config.
  package typealias Builder =
    @Sendable (_ config: Google_Protobuf_Any, _ context: FilterBuildContext) throws(ProxyConfigError) ->
    any TerminalNetworkFilter

  private var builders: [String: Builder] = [:]
  /// Filter names Envoy accepts without typed_config, mapped to their type.
  private var names: [String: String] = [:]

  package init() {}

  /// The registry with tcp_proxy.
  package static func withTcpProxy() -> NetworkFilterRegistry {
    var registry = NetworkFilterRegistry()
    registry.register(
      typeName: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.protoMessageName,
      filterName: "envoy.filters.network.tcp_proxy"
    ) { any, context throws(ProxyConfigError) in
      let proto: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy
      do {
        proto = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(serializedBytes: any.value)
      } catch {
        throw ProxyConfigError("", "cannot decode tcp_proxy config: \(error)")
      }
      var warnings: [ProxyConfigWarning] = []
      let config = try TcpProxyConfig(proto, accessLog: context.accessLog, warnings: &warnings)
      context.warnings.add(warnings)
      return try TcpProxyFilter(config: config, stats: context.stats)
    }
    return registry
  }

  package mutating func register(typeName: String, filterName: String, builder: @escaping Builder) {
    builders[typeName] = builder
    names[filterName] = typeName
  }

  package func builder(forTypeURL typeURL: String) -> Builder? {
    builders[ExtensionTypes.messageName(typeURL)]
  }

  package func typeName(forFilterName name: String) -> String? { names[name] }
}

/// What a filter builder may use while turning config into a filter.
package struct FilterBuildContext: Sendable {
  package var stats: StatsStore
  package var accessLog: AccessLogSink
  /// Where a builder reports accepted-but-ignored config; paths are relative to the filter's typed_config.
  package var warnings: ConfigWarningSink

  package init(stats: StatsStore, accessLog: AccessLogSink, warnings: ConfigWarningSink = ConfigWarningSink())
  {
    self.stats = stats
    self.accessLog = accessLog
    self.warnings = warnings
  }
}

/// Collects warnings from filter builders, which return only the filter.
package final class ConfigWarningSink: Sendable {
  private let collected = Mutex<[ProxyConfigWarning]>([])

  package init() {}

  package func add(_ warnings: [ProxyConfigWarning]) { collected.withLock { $0 += warnings } }

  /// Everything added since the last call.
  package func take() -> [ProxyConfigWarning] {
    collected.withLock { current in
      defer { current = [] }
      return current
    }
  }
}
