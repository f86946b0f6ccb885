import EnvoyAPI
import Foundation
import Logging
import ProxyCore
import Testing

@testable import ProxyServer

/// An istiod-shaped push for a sidecar (Golden/istiod-push: CDS, EDS, LDS, RDS in Istio's shapes) loads
/// whole, in Envoy's order, through the same path xDS updates take: every resource is accepted, clusters
/// warm until their endpoints arrive, the HTTP listener until its route table does. Fields the proto subset
/// does not know are what binary xDS would silently drop; they are pinned here so a new one is noticed.
@Suite("an istiod-shaped push loads")
struct IstiodPushTests {
  static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden/istiod-push")

  /// The document's resources as an update, and the unknown fields JSON decoding skipped.
  static func update(_ file: String, _ type: ResourceType) throws -> (ResourceUpdate, [String]) {
    let path = golden.appendingPathComponent(file).path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let (response, warnings) = try BootstrapLoader.decodeMessage(
      text, as: Envoy_Service_Discovery_V3_DiscoveryResponse.self, format: .yaml, source: file,
      allowUnknownFields: true)
    let update = ResourceUpdate(
      type: type, versionInfo: response.versionInfo,
      resources: response.resources.map {
        .init(name: "", version: response.versionInfo, decodedFromText: $0)
      },
      stateOfTheWorld: true)
    return (update, warnings.map(\.path))
  }

  static func server() throws -> ProxyServer {
    var options = ProxyOptions()
    options.concurrency = 1
    return try ProxyServer(
      options: options, bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap(),
      logLevels: LogLevelControl(level: .critical), logHandler: { _ in SwiftLogNoOpLogHandler() })
  }

  @Test func theWholePushIsAcceptedInEnvoysOrder() async throws {
    let server = try Self.server()
    defer { server.engine.shutdown() }
    let (cds, cdsUnknown) = try Self.update("cds.yaml", .cluster)
    let (eds, edsUnknown) = try Self.update("eds.yaml", .endpoint)
    let (lds, ldsUnknown) = try Self.update("lds.yaml", .listener)
    let (rds, rdsUnknown) = try Self.update("rds.yaml", .route)

    // CDS: EDS clusters warm until their endpoints arrive.
    let cdsResult = await server.dynamic.apply(cds)
    #expect(cdsResult == nil, "\(cdsResult ?? "")")
    #expect(server.clusterManager.all.map(\.name).count == 4)
    #expect(
      server.clusterManager.warming.map(\.name) == [
        "outbound|443||kubernetes.default.svc.cluster.local",
        "outbound|9080||reviews.default.svc.cluster.local",
      ])
    #expect(server.dynamic.neededEndpointNames.count == 2)

    // EDS: warm; hosts keep locality, weights and the metadata auto-mTLS and telemetry read.
    let edsResult = await server.dynamic.apply(eds)
    #expect(edsResult == nil, "\(edsResult ?? "")")
    #expect(server.clusterManager.warming.isEmpty)
    #expect(server.clusterManager.all.count == 6)
    let reviews = try #require(
      server.clusterManager.cluster(named: "outbound|9080||reviews.default.svc.cluster.local"))
    #expect(reviews.hosts.count == 2)
    #expect(reviews.hosts.first?.metadata["envoy.transport_socket_match"] == ["tlsMode": "istio"])
    #expect(reviews.hosts.first?.localityWeight == 2)
    #expect(reviews.hosts.first?.zone == "europe-west1-b")

    // LDS: the HTTP listener on RDS warms until its route table arrives.
    let ldsResult = await server.dynamic.apply(lds)
    #expect(ldsResult == nil, "\(ldsResult ?? "")")
    #expect(
      server.listenerManager.listeners.map(\.name) == ["virtualOutbound", "10.96.0.1_443", "virtualInbound"])
    #expect(server.listenerManager.warmingListeners.map(\.name) == ["0.0.0.0_9080"])
    #expect(server.dynamic.neededRouteNames == ["9080"])

    // RDS: the listener goes active.
    let rdsResult = await server.dynamic.apply(rds)
    #expect(rdsResult == nil, "\(rdsResult ?? "")")
    #expect(server.listenerManager.warmingListeners.isEmpty)
    #expect(
      Set(server.listenerManager.listeners.map(\.name))
        == ["virtualOutbound", "0.0.0.0_9080", "10.96.0.1_443", "virtualInbound"])
    #expect(server.routes.existing(named: "9080")?.current?.config.virtualHosts.count == 2)
    for type in ResourceType.allCases {
      #expect(server.stats.counter(type.statPrefix + ".update_success").value == 1)
    }

    // The same push again (state of the world) changes nothing.
    for update in [cds, eds, lds, rds] { #expect(await server.dynamic.apply(update) == nil) }
    #expect(server.stats.counter("listener_manager.listener_modified").value == 0)
    #expect(server.stats.counter("cluster_manager.cluster_modified").value == 0)

    // What the proto subset does not know yet (dropped on the wire, as binary xDS decoding would).
    #expect(cdsUnknown == [], "\(cdsUnknown)")
    #expect(edsUnknown == [], "\(edsUnknown)")
    #expect(
      ldsUnknown
        == [1, 3, 3, 3, 3].enumerated().map { i, listener in
          "resources[\(listener)].filter_chains[\([0, 1, 2, 6, 7][i])].filters[0].typed_config"
            + ".request_id_extension.typed_config"
        }, "\(ldsUnknown)")
    #expect(
      rdsUnknown == [
        "resources[0].virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate[0].typed_config"
      ],
      "\(rdsUnknown)")
  }
}
