import EnvoyAPI
import NIOCore
import SwiftProtobuf
import Testing

@testable import ProxyCore

@Suite("Listener and cluster protos become validated models with precise errors")
struct ConfigConversionTests {
  let context = FilterBuildContext(
    stats: try! StatsStore(config: StatsConfig()), accessLog: AccessLogSink(validateOnly: true))

  func listener(_ json: String) throws -> Envoy_Config_Listener_V3_Listener {
    EnvoyAPIMessageTypes.registerWithAny()
    return try Envoy_Config_Listener_V3_Listener(jsonString: json)
  }

  func convert(_ json: String) throws(ProxyConfigError) -> (Listener, [ProxyConfigWarning]) {
    var warnings: [ProxyConfigWarning] = []
    let proto = try! listener(json)
    let model = try Listener(proto, filters: .withTcpProxy(), context: context, warnings: &warnings)
    return (model, warnings)
  }

  static let tcp =
    #"{"name":"envoy.filters.network.tcp_proxy","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"s","cluster":"c"}}"#

  @Test func virtualOutbound() throws {
    let (model, warnings) = try convert(
      #"""
      {"name":"virtualOutbound","address":{"socket_address":{"address":"0.0.0.0","port_value":15001}},
       "use_original_dst":true,"traffic_direction":"OUTBOUND",
       "filter_chains":[
         {"name":"virtualOutbound-blackhole","filter_chain_match":{"destination_port":15001},"filters":[\#(Self.tcp)]},
         {"name":"virtualOutbound-catchall-tcp","filters":[
           {"name":"istio.stats","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/stats.PluginConfig","value":{}}},
           \#(Self.tcp)]}]}
      """#)
    #expect(model.useOriginalDestination)
    #expect(model.trafficDirection == .outbound)
    #expect(model.statPrefix == "0.0.0.0_15001")
    #expect(model.filterChains.map(\.name) == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"])
    #expect(model.filterChains[1].skippedFilters == ["istio.stats"])
    #expect(
      warnings == [
        ProxyConfigWarning(
          "filter_chains[1].filters[0]", "Istio filter stats.PluginConfig accepted and skipped")
      ])
  }

  @Test func errorsNameTheField() throws {
    #expect(
      throws: ProxyConfigError(
        "filter_chains[0].filters[0].typed_config",
        "unsupported network filter type \"type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy\""
      )
    ) {
      _ = try self.convertRaw(
        filtersJSON:
          #"[{"name":"r","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"}}]"#
      )
    }
    #expect(
      throws: ProxyConfigError("filter_chains[0].filters[0].typed_config.stat_prefix", "must not be empty")
    ) {
      _ = try self.convertRaw(
        filtersJSON:
          #"[{"name":"t","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","cluster":"c"}}]"#
      )
    }
    #expect(
      throws: ProxyConfigError(
        "filter_chains[0].filters[1]",
        "filter \"t2\" follows the terminal filter envoy.filters.network.tcp_proxy")
    ) {
      _ = try self.convertRaw(
        filtersJSON: "[\(Self.tcp), "
          + Self.tcp.replacingOccurrences(of: "envoy.filters.network.tcp_proxy", with: "t2") + "]")
    }
    #expect(throws: ProxyConfigError("address.socket_address.address", "\"localhost\" is not an IP address"))
    {
      _ = try self.convert(
        #"{"name":"x","address":{"socket_address":{"address":"localhost","port_value":1}},"filter_chains":[{"filters":[\#(Self.tcp)]}]}"#
      )
    }
  }

  /// Crashed the Bootstrap fuzz target (hack/fuzz.sh): proto3 allows durations up to 315,576,000,000 s,
  /// TimeAmount holds about 9,223,372,036 s; the conversion overflowed (a trap) instead of naming the field.
  @Test func durationsTooLargeForTimeAmountNameTheField() throws {
    let cluster = try Envoy_Config_Cluster_V3_Cluster(
      jsonString: #"{"name":"c","type":"STATIC","connect_timeout":"9999999999s"}"#)
    var warnings: [ProxyConfigWarning] = []
    #expect(
      throws: ProxyConfigError(
        "connect_timeout", "9999999999s is out of range (at most 9223372035s, and nanos below 1e9)")
    ) {
      _ = try Cluster(cluster, warnings: &warnings)
    }
    var largest = Google_Protobuf_Duration()
    largest.seconds = 9_223_372_035
    largest.nanos = 999_999_999
    #expect(try DurationConversion.timeAmount(largest, path: "t") == .nanoseconds(9_223_372_035_999_999_999))
    largest.seconds = 9_223_372_036
    largest.nanos = 0
    #expect(
      throws: ProxyConfigError("t", "9223372036s is out of range (at most 9223372035s, and nanos below 1e9)")
    ) {
      _ = try DurationConversion.timeAmount(largest, path: "t")
    }
  }

  /// HttpProtocolOptions is decoded once, at load: its idle timeout reaches the model (0s: never, absent:
  /// Envoy's 1 h), and a value the pools could not use fails the load with its path.
  @Test func httpProtocolOptionsAreDecodedAtLoad() throws {
    func cluster(_ options: String?) throws(ProxyConfigError) -> Cluster {
      let typed =
        options.map {
          #","typed_extension_protocol_options":{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions":{"@type":"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",\#($0)}}"#
        } ?? ""
      let proto = try! Envoy_Config_Cluster_V3_Cluster(
        jsonString: #"{"name":"c","type":"STATIC","connect_timeout":"1s"\#(typed)}"#)
      var warnings: [ProxyConfigWarning] = []
      return try Cluster(proto, warnings: &warnings)
    }
    #expect(try cluster(nil).upstreamHTTPIdleTimeout == .hours(1))
    #expect(
      try cluster(#""common_http_protocol_options":{"idle_timeout":"2.5s"}"#).upstreamHTTPIdleTimeout
        == .milliseconds(2500))
    #expect(
      try cluster(#""common_http_protocol_options":{"idle_timeout":"0s"}"#).upstreamHTTPIdleTimeout == nil)
    #expect(
      throws: ProxyConfigError(
        "typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions]"
          + ".common_http_protocol_options.idle_timeout",
        "9999999999s is out of range (at most 9223372035s, and nanos below 1e9)")
    ) {
      _ = try cluster(#""common_http_protocol_options":{"idle_timeout":"9999999999s"}"#)
    }
  }

  func convertRaw(filtersJSON: String) throws(ProxyConfigError) -> Listener {
    try convert(
      #"{"name":"x","address":{"socket_address":{"address":"127.0.0.1","port_value":1}},"filter_chains":[{"filters":\#(filtersJSON)}]}"#
    ).0
  }

  @Test func listenerFilterPredicates() throws {
    let (model, _) = try convert(
      #"""
      {"name":"virtualInbound","address":{"socket_address":{"address":"0.0.0.0","port_value":15006}},
       "listener_filters":[
         {"name":"envoy.filters.listener.original_dst","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}},
         {"name":"envoy.filters.listener.tls_inspector","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
          "filter_disabled":{"or_match":{"rules":[{"destination_port_range":{"start":3306,"end":3307}},{"destination_port_range":{"start":15006,"end":15007}}]}}},
         {"name":"envoy.filters.listener.http_inspector","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}],
       "listener_filters_timeout":"0s","continue_on_listener_filters_timeout":true,
       "filter_chains":[{"filters":[\#(Self.tcp)]}]}
      """#)
    #expect(model.listenerFilters.map(\.kind) == [.originalDestination, .tlsInspector, .httpInspector])
    #expect(model.listenerFiltersTimeout == nil)
    let active = ActiveListener(config: model, stats: context.stats)
    #expect(active.inspectors(destinationPort: 3306) == (tls: false, http: true))
    #expect(active.inspectors(destinationPort: 8080) == (tls: true, http: true))
  }

  @Test func clusters() throws {
    var warnings: [ProxyConfigWarning] = []
    let passthrough = try Envoy_Config_Cluster_V3_Cluster(
      jsonString:
        #"{"name":"InboundPassthroughCluster","type":"ORIGINAL_DST","lb_policy":"CLUSTER_PROVIDED","connect_timeout":"10s","upstream_bind_config":{"source_address":{"address":"127.0.0.6","port_value":0},"extra_source_addresses":[{"address":{"address":"::6","port_value":0}}]}}"#
    )
    let model = try Cluster(passthrough, warnings: &warnings)
    #expect(model.discovery == .originalDestination)
    #expect(model.sourceAddresses.map(\.ipAddress) == ["127.0.0.6", "::6"])
    #expect(model.connectTimeout == .seconds(10))
    let bad = try Envoy_Config_Cluster_V3_Cluster(jsonString: #"{"name":"od","type":"ORIGINAL_DST"}"#)
    #expect(
      throws: ProxyConfigError(
        "lb_policy", "an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED, not roundRobin")
    ) {
      _ = try Cluster(bad, warnings: &warnings)
    }
    let staticName = try Envoy_Config_Cluster_V3_Cluster(
      jsonString:
        #"{"name":"s","load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"example.com","port_value":80}}}}]}]}}"#
    )
    #expect(
      throws: ProxyConfigError(
        "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
        "\"example.com\" is not an IP address")
    ) {
      _ = try Cluster(staticName, warnings: &warnings)
    }
  }

  @Test func ldsListenerWithoutNameIsStillAnError() throws {
    // Static listeners get a generated name (ProxyServer's StaticResources); LDS resources must have one.
    let proto = try listener(
      #"{"address":{"socket_address":{"address":"0.0.0.0","port_value":80}},"filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"s","cluster":"c"}}]}]}"#
    )
    var warnings: [ProxyConfigWarning] = []
    #expect(throws: ProxyConfigError("name", "listener has no name")) {
      _ = try Listener(proto, filters: .withTcpProxy(), context: context, warnings: &warnings)
    }
  }
}
