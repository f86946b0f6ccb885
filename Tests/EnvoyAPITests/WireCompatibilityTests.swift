import EnvoyAPI
import Foundation
import SwiftProtobuf
import Testing

/// EnvoyAPI against Envoy's own protos (PyPI `xds-protos`): the .proto files, binary and JSON, both ways.
@Suite("Wire compatibility with the official Envoy protos")
struct WireCompatibilityTests {
  init() {
    EnvoyAPIMessageTypes.registerWithAny()
  }

  static var deterministic: BinaryEncodingOptions {
    var options = BinaryEncodingOptions()
    options.useDeterministicOrdering = true
    return options
  }

  /// Whether two messages have the same proto3 JSON, compared as JSON values (key order and spacing aside).
  /// SwiftProtobuf's `==` calls an `Any` decoded from JSON and one decoded from binary different, and its
  /// binary and JSON encoders do not order map entries inside an `Any`: JSON values are the common ground.
  static func sameJSON(_ a: any SwiftProtobuf.Message, _ b: any SwiftProtobuf.Message) throws -> Bool {
    let objects = try [a, b].map {
      try JSONSerialization.jsonObject(with: Data($0.jsonString().utf8)) as? NSDictionary
    }
    return objects[0] != nil && objects[0] == objects[1]
  }

  @Test(
    "hack/protos matches the official descriptors: names, numbers, types, oneofs, enums, services",
    .enabled(if: OfficialPeer.hasProtoCompiler || OfficialPeer.isCI, "\(OfficialPeer.missingCompiler)"))
  func schemaMatchesOfficialDescriptors() throws {
    try #require(OfficialPeer.hasProtoCompiler, "CI=true: \(OfficialPeer.missingCompiler)")
    let peer = try OfficialPeer()
    defer { peer.removeDirectory() }
    let protos = OfficialPeer.repositoryRoot.appendingPathComponent("hack/protos").path
    try peer.run(["schema", protos, peer.file("schema.json").path])
    let report = try #require(try peer.readJSON("schema.json") as? [String: Any])
    let errors = try #require(report["errors"] as? [String])
    let stats = try #require(report["stats"] as? [String: Any])
    #expect(errors.isEmpty, "differences from the official protos:\n\(errors.joined(separator: "\n"))")
    // Everything but Istio's CA (which xds-protos does not ship) was compared.
    #expect((stats["skipped_files"] as? [String]) == ["security/v1alpha1/ca.proto"])
    #expect((stats["messages"] as? Int ?? 0) > 200)
    #expect((stats["services"] as? Int) == 7)
  }

  @Test(
    "Swift encodes, the official classes decode to the same values, bytes and JSON",
    .enabled(if: OfficialPeer.hasOfficialProtos || OfficialPeer.isCI, "\(OfficialPeer.missingProtos)"))
  func swiftToOfficial() throws {
    try #require(OfficialPeer.hasOfficialProtos, "CI=true: \(OfficialPeer.missingProtos)")
    let peer = try OfficialPeer()
    defer { peer.removeDirectory() }
    let fixtures = try Fixtures.all()
    var cases: [[String: String]] = []
    for (name, message) in fixtures {
      let bytes: [UInt8] = try message.serializedBytes(options: Self.deterministic)
      try Data(bytes).write(to: peer.file(name + ".bin"))
      try Data(message.jsonString().utf8).write(to: peer.file(name + ".json"))
      cases.append(["name": name, "type": type(of: message).protoMessageName])
    }
    try JSONSerialization.data(withJSONObject: cases).write(to: peer.file("cases.json"))

    try peer.run(["decode", peer.directory.path])

    let results = try #require(try peer.readJSON("decoded.json") as? [String: [String: Any]])
    #expect(Set(results.keys) == Set(fixtures.map(\.name)))
    for (name, message) in fixtures {
      let result = try #require(results[name], "no result for \(name)")
      let errors = result["errors"] as? [String] ?? ["no errors list"]
      #expect(errors.isEmpty, "\(name): \(errors.joined(separator: "\n"))")
      // The official JSON (proto3 JSON names, "@type" in Any) reads back to the very message Swift sent.
      let officialJSON = try #require(result["json"] as? String)
      let back = try type(of: message).init(jsonString: officialJSON)
      #expect(try Self.sameJSON(back, message), "\(name): official JSON decodes to a different message")
    }
  }

  @Test(
    "The official classes encode, Swift decodes the same values, bytes and JSON",
    .enabled(if: OfficialPeer.hasOfficialProtos || OfficialPeer.isCI, "\(OfficialPeer.missingProtos)"))
  func officialToSwift() throws {
    try #require(OfficialPeer.hasOfficialProtos, "CI=true: \(OfficialPeer.missingProtos)")
    let peer = try OfficialPeer()
    defer { peer.removeDirectory() }
    try peer.run(["encode", peer.directory.path])
    let listing = try #require(try peer.readJSON("encoded.json") as? [[String: Any]])

    var decoded: [String: any SwiftProtobuf.Message] = [:]
    for entry in listing {
      let name = try #require(entry["name"] as? String)
      let typeName = try #require(entry["type"] as? String)
      let type = try #require(
        Google_Protobuf_Any.messageType(forMessageName: typeName), "\(typeName) is not an EnvoyAPI message")
      let bytes = try [UInt8](Data(contentsOf: peer.file(name + ".bin")))
      let json = try String(contentsOf: peer.file(name + ".json"), encoding: .utf8)
      let fromBinary = try type.init(serializedBytes: bytes)
      let fromJSON = try type.init(jsonString: json)
      #expect(try Self.sameJSON(fromBinary, fromJSON), "\(name): binary and JSON decode differently")
      // Unknown fields would survive a binary round trip but not JSON decoding: none may be left.
      #expect(fromBinary.unknownFields.data.isEmpty, "\(name): fields EnvoyAPI does not know")
      let again: [UInt8] = try fromBinary.serializedBytes(options: Self.deterministic)
      if entry["exact_bytes"] as? Bool == true {
        #expect(again == bytes, "\(name): re-encoded bytes differ from the official encoding")
      } else {
        // Implementations order map entries differently; the size and the content must still agree.
        #expect(again.count == bytes.count, "\(name): re-encoded size differs from the official encoding")
        #expect(try type.init(serializedBytes: again).isEqualTo(message: fromBinary))
      }
      decoded[name] = fromBinary
    }
    #expect(decoded.count == 6)
    try checkOfficialValues(decoded)
  }

  /// Field values python_cases() set, read through the Swift types.
  func checkOfficialValues(_ decoded: [String: any SwiftProtobuf.Message]) throws {
    let bootstrap = try #require(decoded["bootstrap"] as? Envoy_Config_Bootstrap_V3_Bootstrap)
    #expect(bootstrap.node.metadata.fields["ENVOY_STATUS_PORT"]?.numberValue == 15021)
    #expect(bootstrap.node.metadata.fields["LABELS"]?.structValue.fields["app"]?.stringValue == "details")
    #expect(bootstrap.admin.address.socketAddress.portValue == 15000)
    #expect(bootstrap.dynamicResources.adsConfig.apiType == .grpc)
    #expect(bootstrap.dynamicResources.adsConfig.grpcServices.first?.envoyGrpc.clusterName == "xds-grpc")
    #expect(bootstrap.dynamicResources.cdsConfig.configSourceSpecifier == .ads(.init()))
    #expect(bootstrap.dynamicResources.cdsConfig.hasInitialFetchTimeout)
    let sds = try #require(bootstrap.staticResources.clusters.last)
    #expect(sds.name == "sds-grpc")
    #expect(
      sds.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.pipe.path
        == "./var/run/secrets/workload-spiffe-uds/socket")
    let h2 = try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(
      unpackingAny: try #require(
        sds.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]))
    guard case .http2ProtocolOptions = h2.explicitHTTPConfig.protocolConfig else {
      Issue.record("sds-grpc: explicit_http_config is not HTTP/2")
      return
    }
    #expect(
      bootstrap.statsConfig.statsMatcher.inclusionList.patterns.map(\.suffix) == [
        "", "ssl_context_update_by_sds",
      ])
    #expect(bootstrap.layeredRuntime.layers[1].adminLayer == .init())
    #expect(bootstrap.statsFlushInterval == .init(seconds: 5))

    let cds = try #require(decoded["cds_response"] as? Envoy_Service_Discovery_V3_DiscoveryResponse)
    #expect(cds.typeURL == "type.googleapis.com/envoy.config.cluster.v3.Cluster")
    let reviews = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: cds.resources[0])
    #expect(reviews.type == .eds)
    #expect(reviews.circuitBreakers.thresholds[0].maxRetries.value == 4_294_967_295)
    #expect(reviews.commonLbConfig.hasHealthyPanicThreshold)
    #expect(reviews.transportSocketMatches[0].match.fields["tlsMode"]?.stringValue == "istio")
    let upstreamTLS = try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(
      unpackingAny: reviews.transportSocketMatches[0].transportSocket.typedConfig)
    #expect(upstreamTLS.commonTlsContext.tlsParams.tlsMinimumProtocolVersion == .tlsv12)
    #expect(
      upstreamTLS.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name == "ROOTCA"
    )
    let passthrough = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: cds.resources[1])
    #expect(passthrough.type == .originalDst && passthrough.lbPolicy == .clusterProvided)
    #expect(passthrough.originalDstLbConfig.upstreamPortOverride.value == 8443)

    let eds = try #require(
      decoded["eds_delta_response"] as? Envoy_Service_Discovery_V3_DeltaDiscoveryResponse)
    let cla = try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: eds.resources[0].resource)
    #expect(cla.endpoints.map(\.locality.zone) == ["us-east1-b", "us-east1-c"])
    #expect(cla.endpoints[1].lbEndpoints[0].healthStatus == .draining)
    #expect(cla.endpoints[1].priority == 1)
    #expect(cla.policy.overprovisioningFactor.value == 140)
    #expect(eds.removedResources == ["outbound|9080||ratings.bookinfo.svc.cluster.local"])

    let routes = try #require(decoded["route_configuration"] as? Envoy_Config_Route_V3_RouteConfiguration)
    let vhost = try #require(routes.virtualHosts.first)
    #expect(vhost.routes.map(\.name) == ["v2-header", "split", "teapot", "redirect"])
    #expect(vhost.routes[0].match.headers[0].stringMatch.exact == "jason")
    #expect(vhost.routes[0].route.retryPolicy.retriableStatusCodes == [503])
    #expect(vhost.routes[0].route.hashPolicy[0].header.headerName == "x-user")
    #expect(vhost.routes[1].route.weightedClusters.clusters.map(\.weight.value) == [75, 25])
    #expect(vhost.routes[2].directResponse.status == 418)
    #expect(vhost.routes[2].directResponse.body.inlineString == "short and stout")
    #expect(vhost.routes[3].match.safeRegex.regex == "^/old/.*")
    #expect(vhost.routes[3].redirect.responseCode == .permanentRedirect)

    let sdsResponse = try #require(decoded["sds_response"] as? Envoy_Service_Discovery_V3_DiscoveryResponse)
    let root = try Envoy_Extensions_TransportSockets_Tls_V3_Secret(unpackingAny: sdsResponse.resources[0])
    #expect(root.name == "ROOTCA")
    #expect(
      root.validationContext.trustedCa.inlineBytes.starts(with: Data("-----BEGIN CERTIFICATE-----".utf8)))

    let nack = try #require(decoded["nack_request"] as? Envoy_Service_Discovery_V3_DiscoveryRequest)
    #expect(nack.errorDetail.code == 3)
    #expect(nack.resourceNames == ["a", "b"])
    #expect(nack.responseNonce == "abc")
  }
}
