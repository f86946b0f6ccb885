import EnvoyAPI
import SwiftProtobuf
import Testing

@testable import ProxyCore

@Suite("Cluster fields that Istio sets: locality and zone-aware balancing, upstream filters")
struct IstioClusterConfigTests {
  func cluster(_ json: String) throws -> (Cluster, [ProxyConfigWarning]) {
    EnvoyAPIMessageTypes.registerWithAny()
    var warnings: [ProxyConfigWarning] = []
    let model = try Cluster(Envoy_Config_Cluster_V3_Cluster(jsonString: json), warnings: &warnings)
    return (model, warnings)
  }

  @Test func localityAndZoneAwareLoadBalancingAreAccepted() throws {
    let (_, locality) = try cluster(
      #"{"name":"outbound|80||a.default.svc.cluster.local","type":"EDS","common_lb_config":{"locality_weighted_lb_config":{}}}"#
    )
    #expect(
      locality == [
        ProxyConfigWarning(
          "common_lb_config.locality_weighted_lb_config",
          "locality weights are not applied yet: hosts of the top priority are balanced as one set")
      ])
    let (_, zone) = try cluster(
      #"{"name":"z","type":"EDS","common_lb_config":{"healthy_panic_threshold":{"value":0},"zone_aware_lb_config":{"routing_enabled":{"value":100},"min_cluster_size":"6"}}}"#
    )
    #expect(zone.isEmpty)
  }

  @Test func istioClusterFiltersAreSkippedOthersRejected() throws {
    let (_, warnings) = try cluster(
      #"""
      {"name":"outbound|9080||reviews.default.svc.cluster.local","type":"EDS","filters":[
        {"name":"istio.metadata_exchange","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct",
          "type_url":"type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange","value":{"protocol":"istio-peer-exchange"}}}]}
      """#)
    #expect(
      warnings == [
        ProxyConfigWarning(
          "filters[0]",
          "Istio upstream filter envoy.tcp.metadataexchange.config.MetadataExchange accepted and skipped (no metadata exchange yet)"
        )
      ])
    #expect(
      throws: ProxyConfigError(
        "filters[0].typed_config",
        "upstream network filter \"envoy.filters.upstream_network.x\" (envoy.extensions.filters.network.x.v3.X) is not supported"
      )
    ) {
      _ = try cluster(
        #"{"name":"c","filters":[{"name":"envoy.filters.upstream_network.x","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/envoy.extensions.filters.network.x.v3.X"}}]}"#
      )
    }
  }
}
