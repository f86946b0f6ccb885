import EnvoyAPI
import Foundation
import PilotfishKit
import SwiftProtobuf
import TestSupport
import Testing

@testable import Agent

/// Whether python3 with the official Envoy protos (PyPI xds-protos) is available. In CI (CI=true)
/// the tests run regardless, so a missing package fails instead of being skipped.
enum OfficialProtos {
  static let available: Bool = {
    (try? python(["-c", "import envoy.config.bootstrap.v3.bootstrap_pb2"], stdin: "").status) == 0
  }()
  static let required = TestEnvironment.mandatory

  static func python(_ args: [String], stdin: String) throws -> (status: Int32, output: String) {
    let child = try ChildProcess.run(
      "/usr/bin/env", ["python3"] + args, input: Data(stdin.utf8), timeout: .seconds(120))
    return (child.exitStatus ?? -1, child.stdoutText + child.stderrText)
  }

  /// Runs `script` on `json` and returns the printed fields; fails when python3 rejects the JSON.
  static func parse(_ json: String) throws -> [String: String] {
    let result = try python(["-c", script], stdin: json)
    try #require(result.status == 0, "python3 rejected the bootstrap: \(result.output)")
    var fields: [String: String] = [:]
    for line in result.output.split(separator: "\n") {
      guard let eq = line.firstIndex(of: "=") else { continue }
      fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return fields
  }

  /// Parses `json` as an envoy.config.bootstrap.v3.Bootstrap with the official protos and prints the
  /// fields the tests compare, one `key=value` per line.
  static let script = """
    import sys
    from google.protobuf import json_format
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
    from envoy.extensions.filters.http.router.v3 import router_pb2
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
    b = json_format.Parse(sys.stdin.read(), bootstrap_pb2.Bootstrap())
    print("node_id=" + b.node.id)
    print("node_cluster=" + b.node.cluster)
    print("clusters=" + ",".join(c.name for c in b.static_resources.clusters))
    l = b.static_resources.listeners[0]
    print("listener=%s:%d" % (l.name, l.address.socket_address.port_value))
    hcm = http_connection_manager_pb2.HttpConnectionManager()
    l.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    r = hcm.route_config.virtual_hosts[0].routes[0]
    print("route=%s->%s" % (r.match.prefix, r.route.cluster))
    xds = [c for c in b.static_resources.clusters if c.name == "xds-grpc"][0]
    print("xds_pipe=" + xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path)
    opts = http_protocol_options_pb2.HttpProtocolOptions()
    xds.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack(opts)
    print("xds_http2=%s" % opts.explicit_http_config.HasField("http2_protocol_options"))
    print("ads=" + b.dynamic_resources.ads_config.ApiType.Name(b.dynamic_resources.ads_config.api_type))
    print("admin=%s:%d" % (b.admin.address.socket_address.address, b.admin.address.socket_address.port_value))
    print("proxy_config_concurrency=%d" % b.node.metadata.fields["PROXY_CONFIG"].struct_value.fields["concurrency"].number_value)
    """
}

@Suite("BootstrapGenerator")
struct BootstrapGeneratorTests {
  func samplePod(_ env: [String: String] = [:]) throws -> PodMetadata {
    guard case .object(let pod) = try JSONValue.parse(jsonOrYAML: samplePodJSON) else {
      throw AgentError(.invalidFile, "sample pod")
    }
    return try PodMetadata.fromPod(.object(pod), source: "sample", environment: env)
  }

  @Test("node id, cluster, locality and metadata")
  func node() throws {
    let g = try BootstrapGenerator(pod: samplePod(["ISTIO_META_DNS_CAPTURE": "true"]))
    let node = g.node
    #expect(node.id == "sidecar~10.1.2.3~web-5d9f8-abcde.shop~shop.svc.cluster.local")
    #expect(node.cluster == "web.shop")
    #expect(node.locality.region == "us-east1")
    #expect(node.locality.zone == "us-east1-b")
    let fields = node.metadata.fields
    for key in [
      "NAME", "NAMESPACE", "CLUSTER_ID", "MESH_ID", "LABELS", "ANNOTATIONS", "INSTANCE_IPS",
      "ISTIO_VERSION", "SERVICE_ACCOUNT", "WORKLOAD_NAME", "OWNER", "PROXY_CONFIG", "NODE_NAME",
      "INTERCEPTION_MODE", "ENVOY_STATUS_PORT", "ENVOY_PROMETHEUS_PORT", "METADATA_DISCOVERY",
      "WORKLOAD_IDENTITY_SOCKET_FILE", "DNS_CAPTURE",
    ] {
      #expect(fields[key] != nil, "missing node metadata \(key)")
    }
    #expect(fields["INSTANCE_IPS"]?.stringValue == "10.1.2.3,fd00::3")
    #expect(fields["ENVOY_STATUS_PORT"]?.numberValue == 15021)
    #expect(fields["METADATA_DISCOVERY"]?.stringValue == "false")
    #expect(fields["LABELS"]?.structValue.fields["pod-template-hash"] == nil)
  }

  @Test("static resources, ADS and stats")
  func resources() throws {
    let pod = try samplePod()
    let b = try BootstrapGenerator(pod: pod).bootstrap()
    #expect(b.admin.address.socketAddress.address == "127.0.0.1")
    #expect(b.admin.address.socketAddress.portValue == 15000)
    #expect(b.staticResources.clusters.map(\.name) == ["prometheus_stats", "agent", "sds-grpc", "xds-grpc"])
    let sds = b.staticResources.clusters[2]
    #expect(
      sds.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.pipe.path
        == "./var/run/secrets/workload-spiffe-uds/socket")
    let agent = b.staticResources.clusters[1]
    #expect(
      agent.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue == 15020)
    #expect(b.staticResources.listeners.map(\.name) == ["0.0.0.0_15021"])
    #expect(b.dynamicResources.adsConfig.apiType == .deltaGrpc)
    #expect(b.dynamicResources.adsConfig.grpcServices[0].envoyGrpc.clusterName == "xds-grpc")
    let patterns = b.statsConfig.statsMatcher.inclusionList.patterns
    #expect(patterns.contains { $0.prefix == "upstream_rq" })  // from the annotation
    #expect(patterns.contains { $0.prefix == "cluster.xds-grpc" })
    #expect(patterns.contains { $0.suffix == "rbac.allowed" })
    #expect(b.statsConfig.statsTags.contains { $0.tagName == "destination_workload" })
    #expect(b.layeredRuntime.layers.map(\.name) == ["global config", "admin"])

    var annotated = pod
    annotated.annotations["sidecar.istio.io/statsInclusionPrefixes"] = "tls_inspector, http.inbound"
    annotated.annotations["sidecar.istio.io/statsInclusionSuffixes"] = "upstream_cx_total"
    let annotatedPatterns = try BootstrapGenerator(pod: annotated).bootstrap()
      .statsConfig.statsMatcher.inclusionList.patterns
    #expect(annotatedPatterns.contains { $0.prefix == "tls_inspector" })
    #expect(annotatedPatterns.contains { $0.prefix == "http.inbound" })
    #expect(annotatedPatterns.contains { $0.suffix == "upstream_cx_total" })

    let sotw = try BootstrapGenerator(pod: pod, xdsMode: .stateOfTheWorld).bootstrap()
    #expect(sotw.dynamicResources.adsConfig.apiType == .grpc)
    let sotwByEnv = try BootstrapGenerator(pod: samplePod(["ISTIO_DELTA_XDS": "false"])).bootstrap()
    #expect(sotwByEnv.dynamicResources.adsConfig.apiType == .grpc)
  }

  @Test("JSON round-trips through SwiftProtobuf and is written to envoy-rev.json")
  func writeFile() throws {
    let root = try TempRoot()
    defer { root.remove() }
    let g = try BootstrapGenerator(pod: samplePod())
    let path = try g.write(root: root.path)
    #expect(path == root.path + "/etc/istio/proxy/envoy-rev.json")
    EnvoyAPIMessageTypes.registerWithAny()
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let parsed = try Envoy_Config_Bootstrap_V3_Bootstrap(jsonString: text)
    // Any payloads decoded from JSON compare unequal to freshly packed ones and Struct key order
    // varies; compare the JSON documents with their keys sorted.
    func sortedKeys(_ value: JSONValue) -> JSONValue {
      switch value {
      case .object(let members):
        return .object(
          .init(
            uniqueKeysWithValues: members.sorted { $0.key < $1.key }.map { ($0.key, sortedKeys($0.value)) }))
      case .array(let elements): return .array(elements.map(sortedKeys))
      default: return value
      }
    }
    let reencoded = try JSONValue.parseJSON(parsed.jsonString())
    #expect(sortedKeys(reencoded) == sortedKeys(try JSONValue.parseJSON(g.bootstrap().jsonString())))
    #expect(parsed.node.id == "sidecar~10.1.2.3~web-5d9f8-abcde.shop~shop.svc.cluster.local")
  }

  @Test(
    "the official Envoy protos accept the bootstrap",
    .enabled(if: OfficialProtos.available || OfficialProtos.required))
  func officialProtos() throws {
    let fields = try OfficialProtos.parse(BootstrapGenerator(pod: samplePod()).json())
    #expect(fields["node_id"] == "sidecar~10.1.2.3~web-5d9f8-abcde.shop~shop.svc.cluster.local")
    #expect(fields["node_cluster"] == "web.shop")
    #expect(fields["clusters"] == "prometheus_stats,agent,sds-grpc,xds-grpc")
    #expect(fields["listener"] == "0.0.0.0_15021:15021")
    #expect(fields["route"] == "/healthz/ready->agent")
    #expect(fields["xds_pipe"] == "./etc/istio/proxy/XDS")
    #expect(fields["xds_http2"] == "True")
    #expect(fields["ads"] == "DELTA_GRPC")
    #expect(fields["admin"] == "127.0.0.1:15000")
    #expect(fields["proxy_config_concurrency"] == "2")
  }

  @Test(
    "the official Envoy protos accept an environment-built, state-of-the-world bootstrap",
    .enabled(if: OfficialProtos.available || OfficialProtos.required))
  func officialProtosFromEnvironment() throws {
    let root = try TempRoot()
    defer { root.remove() }
    try root.write("etc/istio/pod/labels", "app.kubernetes.io/name=\"ratings\"\n")
    try root.write("etc/istio/pod/annotations", "proxy.istio.io/config=\"concurrency: 1\"\n")
    let pod = try PodMetadata.fromEnvironment(
      [
        "POD_NAME": "ratings-0", "POD_NAMESPACE": "bookinfo", "INSTANCE_IP": "10.4.0.9",
        "ENVOY_STATUS_PORT": "15031", "ISTIO_META_MESH_ID": "m",
      ], root: root.path)
    let fields = try OfficialProtos.parse(BootstrapGenerator(pod: pod, xdsMode: .stateOfTheWorld).json())
    #expect(fields["node_id"] == "sidecar~10.4.0.9~ratings-0.bookinfo~bookinfo.svc.cluster.local")
    #expect(fields["node_cluster"] == "ratings.bookinfo")
    #expect(fields["listener"] == "0.0.0.0_15031:15031")
    #expect(fields["ads"] == "GRPC")
    #expect(fields["proxy_config_concurrency"] == "1")
  }

  @Test("golden bootstrap for the sample pod (PILOTFISH_UPDATE_GOLDEN=1 regenerates)")
  func golden() throws {
    let text = try BootstrapGenerator(pod: samplePod()).json()
    let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Golden/sample-pod.envoy-rev.json")
    if ProcessInfo.processInfo.environment["PILOTFISH_UPDATE_GOLDEN"] == "1" {
      try Data(text.utf8).write(to: golden)
    }
    let expected = try String(contentsOf: golden, encoding: .utf8)
    #expect(text == expected, "bootstrap differs from \(golden.path); rerun with PILOTFISH_UPDATE_GOLDEN=1")
  }
}

extension BootstrapGeneratorTests {
  @Test("without a control plane the empty mesh's sidecar config is static")
  func withoutAControlPlaneTheSidecarConfigIsStatic() throws {
    var pod = try samplePod()
    pod.proxyConfig.discoveryAddress = ""
    pod.instanceIPs = ["10.0.0.2", "fd00::2"]
    let bootstrap = try BootstrapGenerator(pod: pod).bootstrap()
    #expect(!bootstrap.hasDynamicResources)
    let listeners = bootstrap.staticResources.listeners.map(\.name)
    #expect(
      listeners == [
        "0.0.0.0_15021", "virtualOutbound", "virtualInbound", "virtualOutbound6", "virtualInbound6",
      ])
    let outbound = bootstrap.staticResources.listeners[1]
    #expect(outbound.useOriginalDst.value)
    #expect(
      outbound.filterChains.map(\.name) == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"])
    let inbound = bootstrap.staticResources.clusters.first { $0.name == "InboundPassthroughCluster" }
    #expect(inbound?.upstreamBindConfig.sourceAddress.address == "127.0.0.6")
    #expect(inbound?.upstreamBindConfig.extraSourceAddresses.first?.address.address == "::6")
    // With istiod, none of it: LDS/CDS come over ADS.
    let withIstiod = try BootstrapGenerator(pod: samplePod()).bootstrap()
    #expect(withIstiod.hasDynamicResources)
    #expect(withIstiod.staticResources.listeners.map(\.name) == ["0.0.0.0_15021"])
  }
}
