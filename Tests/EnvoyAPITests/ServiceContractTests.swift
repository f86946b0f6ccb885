import EnvoyAPI
import Foundation
import SwiftProtobuf
import Testing

/// What needs no Python: Istio's CA messages (xds-protos does not ship them), gRPC method paths,
/// type URLs and the Any registry.
@Suite("Service contracts")
struct ServiceContractTests {
  init() {
    EnvoyAPIMessageTypes.registerWithAny()
  }

  @Test("IstioCertificateRequest: csr = 1, validity_duration = 3, metadata = 4")
  func caRequestWireFormat() throws {
    let request = Istio_V1_Auth_IstioCertificateRequest.with {
      $0.csr = "C"
      $0.validityDuration = 86400
      $0.metadata = Google_Protobuf_Struct(fields: ["CertSigner": .init(stringValue: "s")])
    }
    let bytes: [UInt8] = try request.serializedBytes()
    // field 1 (LEN) "C"; field 3 (VARINT) 86400; field 4 (LEN) a Struct.
    #expect(Array(bytes.prefix(7)) == [0x0A, 0x01, 0x43, 0x18, 0x80, 0xA3, 0x05])
    #expect(bytes[7] == 0x22)
    #expect(
      try request.jsonString() == #"{"csr":"C","validityDuration":"86400","metadata":{"CertSigner":"s"}}"#)
  }

  @Test("IstioCertificateResponse: cert_chain = 1, repeated, leaf first")
  func caResponseWireFormat() throws {
    let bytes: [UInt8] = [0x0A, 0x04] + Array("leaf".utf8) + [0x0A, 0x04] + Array("root".utf8)
    let response = try Istio_V1_Auth_IstioCertificateResponse(serializedBytes: bytes)
    #expect(response.certChain == ["leaf", "root"])
  }

  @Test("gRPC method paths are Envoy's and Istio's")
  func methodPaths() {
    typealias ADS = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method
    typealias SDS = Envoy_Service_Secret_V3_SecretDiscoveryService.Method
    typealias CA = Istio_V1_Auth_IstioCertificateService.Method
    let paths = [
      ADS.StreamAggregatedResources.descriptor.fullyQualifiedMethod,
      ADS.DeltaAggregatedResources.descriptor.fullyQualifiedMethod,
      SDS.StreamSecrets.descriptor.fullyQualifiedMethod,
      SDS.DeltaSecrets.descriptor.fullyQualifiedMethod,
      SDS.FetchSecrets.descriptor.fullyQualifiedMethod,
      Envoy_Service_Listener_V3_ListenerDiscoveryService.Method.StreamListeners.descriptor
        .fullyQualifiedMethod,
      Envoy_Service_Cluster_V3_ClusterDiscoveryService.Method.DeltaClusters.descriptor.fullyQualifiedMethod,
      Envoy_Service_Endpoint_V3_EndpointDiscoveryService.Method.StreamEndpoints.descriptor
        .fullyQualifiedMethod,
      Envoy_Service_Route_V3_RouteDiscoveryService.Method.FetchRoutes.descriptor.fullyQualifiedMethod,
      CA.CreateCertificate.descriptor.fullyQualifiedMethod,
    ]
    #expect(
      paths == [
        "envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        "envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
        "envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets",
        "envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets",
        "envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets",
        "envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
        "envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters",
        "envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints",
        "envoy.service.route.v3.RouteDiscoveryService/FetchRoutes",
        "istio.v1.auth.IstioCertificateService/CreateCertificate",
      ])
  }

  @Test("Type URLs and the Any registry know every xDS resource type")
  func typeURLs() throws {
    #expect(
      EnvoyAPIMessageTypes.typeURL(of: Envoy_Config_Listener_V3_Listener.self)
        == "type.googleapis.com/envoy.config.listener.v3.Listener")
    for url in [
      "type.googleapis.com/envoy.config.listener.v3.Listener",
      "type.googleapis.com/envoy.config.cluster.v3.Cluster",
      "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
      "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
      "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
      "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "type.googleapis.com/udpa.type.v1.TypedStruct",
      "type.googleapis.com/xds.type.v3.TypedStruct",
    ] {
      #expect(Google_Protobuf_Any.messageType(forTypeURL: url) != nil, "\(url) is not registered")
    }
    let names = EnvoyAPIMessageTypes.all.map { $0.protoMessageName }
    #expect(Set(names).count == names.count)
  }

  @Test("A bootstrap in Envoy's JSON, with typed_config in Any, reads and writes back")
  func bootstrapJSON() throws {
    let json = """
      {
        "node": {"id": "router~10.0.0.1~gw.ns~ns.svc.cluster.local", "metadata": {"ISTIO_VERSION": "1.28.0"}},
        "admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 15000}}},
        "staticResources": {
          "listeners": [{
            "name": "tcp", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9000}},
            "filterChains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
              "statPrefix": "tcp", "cluster": "backend"}}]}]
          }],
          "clusters": [{"name": "backend", "type": "STRICT_DNS", "lbPolicy": "ROUND_ROBIN", "connectTimeout": "0.25s",
            "loadAssignment": {"clusterName": "backend", "endpoints": [{"lbEndpoints": [
              {"endpoint": {"address": {"socketAddress": {"address": "backend.local", "portValue": 80}}}}]}]}}]
        }
      }
      """
    let bootstrap = try Envoy_Config_Bootstrap_V3_Bootstrap(jsonString: json)
    let listener = try #require(bootstrap.staticResources.listeners.first)
    #expect(listener.address.socketAddress.portValue == 9000)
    let tcp = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(
      unpackingAny: listener.filterChains[0].filters[0].typedConfig)
    #expect(tcp.cluster == "backend")
    let cluster = try #require(bootstrap.staticResources.clusters.first)
    #expect(cluster.type == .strictDns && cluster.connectTimeout == .init(seconds: 0, nanos: 250_000_000))
    let again = try Envoy_Config_Bootstrap_V3_Bootstrap(jsonString: try bootstrap.jsonString())
    #expect(again == bootstrap)
  }
}
