import Foundation
import TestSupport
import Testing

/// `pilotfish-proxy` as an xDS client of a control plane written on the official Envoy protos
/// (Tests/Helpers/xds_control_plane.py), over a Unix socket, in both ADS variants: clusters with EDS and
/// listeners with RDS arrive and carry real HTTP traffic to an upstream; a bad listener is NACKed with its
/// field path while the old config keeps serving; a listener update that leaves a tcp_proxy chain unchanged
/// keeps that chain's long-lived connection; a lost stream is resumed with the versions the proxy holds.
@Suite(
  "pilotfish-proxy over ADS", .serialized, .timeLimit(.minutes(5)),
  .enabled(if: XDSControlPlaneProcess.shouldRun, "\(XDSControlPlaneProcess.missing)"))
struct ADSTests {
  /// A small HTTP upstream (python3's http.server) answering every GET with `body`.
  final class HTTPUpstream {
    let process = Process()
    let port: Int

    init(body: String) throws {
      let script = """
        import http.server, sys
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                body = sys.argv[1].encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["python3", "-c", script, body]
      let out = Pipe()
      process.standardOutput = out
      process.standardError = FileHandle.nullDevice
      try process.run()
      var line = Data()
      while !line.contains(UInt8(ascii: "\n")) {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
      }
      guard
        let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
      else {
        process.terminate()
        throw POSIXError(.EIO)
      }
      self.port = port
    }

    /// Kills the server and reaps it (a child left running would hold the test runner's output open).
    func stop() {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      _ = ChildProcess.reap(process, timeout: .seconds(5))
    }

    deinit { stop() }
  }

  static func bootstrap(api: String, socket: String) -> String {
    """
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    node: {id: "sidecar~10.0.0.1~app.default~default.svc.cluster.local", cluster: app.default}
    dynamic_resources:
      ads_config:
        api_type: \(api)
        transport_api_version: V3
        grpc_services: [{envoy_grpc: {cluster_name: xds-grpc}}]
        set_node_on_first_message_only: true
      cds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
      lds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
    static_resources:
      clusters:
      - name: xds-grpc
        type: STATIC
        connect_timeout: 1s
        load_assignment:
          cluster_name: xds-grpc
          endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: {path: \(socket)}}}}]}]
    """
  }

  static func clusters(echoPort: Int) -> [String] {
    [
      #"{"name":"backend","type":"EDS","connect_timeout":"1s","eds_cluster_config":{"eds_config":{"ads":{},"resource_api_version":"V3"},"service_name":"backend-svc"}}"#,
      #"{"name":"echo","type":"STATIC","connect_timeout":"1s","load_assignment":{"cluster_name":"echo","endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":\#(echoPort)}}}}]}]}}"#,
    ]
  }

  static func endpoints(port: Int) -> [String] {
    [
      #"{"cluster_name":"backend-svc","endpoints":[{"locality":{"zone":"z1"},"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":\#(port)}}},"metadata":{"filter_metadata":{"envoy.transport_socket_match":{"tlsMode":"istio"}}}}]}]}"#
    ]
  }

  /// `http` (HCM on RDS "routes", stat prefix `statPrefix`) and `tcp` (tcp_proxy to echo), both on port 0.
  static func listeners(statPrefix: String = "web") -> [String] {
    [
      #"{"name":"http","address":{"socket_address":{"address":"127.0.0.1","port_value":0}},"filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":"\#(statPrefix)","rds":{"route_config_name":"routes","config_source":{"ads":{},"initial_fetch_timeout":"0s","resource_api_version":"V3"}},"http_filters":[{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}"#,
      #"{"name":"tcp","address":{"socket_address":{"address":"127.0.0.1","port_value":0}},"filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"tcp","cluster":"echo"}}]}]}"#,
    ]
  }

  static func routes(direct: String? = nil) -> [String] {
    let action =
      direct.map { #""direct_response":{"status":200,"body":{"inline_string":"\#($0)"}}"# }
      ?? #""route":{"cluster":"backend"}"#
    return [
      #"{"name":"routes","virtual_hosts":[{"name":"all","domains":["*"],"routes":[{"match":{"prefix":"/"},\#(action)}]}]}"#
    ]
  }

  @Test(arguments: ["DELTA_GRPC", "GRPC"])
  func configArrivesOverADSAndUpdatesKeepWhatDidNotChange(api: String) async throws {
    let delta = api == "DELTA_GRPC"
    let plane = try await XDSControlPlaneProcess.start()
    defer { plane.stop() }
    let upstream = try HTTPUpstream(body: "from-upstream")
    defer { upstream.stop() }
    let echo = try LoopbackServer(.echo)
    let proxy = try ProxyServeTests.RunningProxy(
      bootstrap: Self.bootstrap(api: api, socket: plane.socketPath), extra: ["--drain-time-s", "1"])
    defer { proxy.stop() }
    typealias Plane = XDSControlPlaneProcess

    // CDS and LDS wildcard on one stream, the node on its first message only.
    let first = try await plane.nextRequest("CDS subscription") { $0.typeURL == Plane.clusterType }
    #expect(first.nodeID == "sidecar~10.0.0.1~app.default~default.svc.cluster.local")
    try await plane.nextRequest("LDS subscription") { $0.typeURL == Plane.listenerType }

    // CDS → EDS for the cluster's service name, then its ACK; LDS → RDS for the route name.
    try await plane.set(Plane.clusterType, version: "c1", resources: Self.clusters(echoPort: echo.port))
    let eds = try await plane.nextRequest("EDS subscription") { $0.typeURL == Plane.endpointType }
    #expect((delta ? eds.subscribe : eds.resourceNames) == ["backend-svc"])
    try await plane.nextRequest("CDS ACK") {
      $0.typeURL == Plane.clusterType && $0.errorDetail == nil && (delta || $0.versionInfo == "c1")
        && !($0.responseNonce ?? "").isEmpty
    }
    try await plane.set(Plane.endpointType, version: "e1", resources: Self.endpoints(port: upstream.port))
    try await plane.set(Plane.listenerType, version: "l1", resources: Self.listeners())
    let rds = try await plane.nextRequest("RDS subscription") { $0.typeURL == Plane.routeType }
    #expect((delta ? rds.subscribe : rds.resourceNames) == ["routes"])
    try await plane.set(Plane.routeType, version: "r1", resources: Self.routes())
    #expect(proxy.waitUntilLive())

    // Real HTTP through the xDS-built listener, routed by RDS to the EDS host.
    let httpPort = try #require(try FileConfigTests.port(of: "http", in: proxy))
    let tcpPort = try #require(try FileConfigTests.port(of: "tcp", in: proxy))
    #expect(try FileConfigTests.curl(httpPort) == "from-upstream")
    let (_, clusters) = try proxy.request("/clusters")
    #expect(clusters.contains("backend::127.0.0.1:\(upstream.port)::"))
    #expect(try FileConfigTests.stat("control_plane.connected_state", in: proxy) == "1")

    // A long-lived connection through `tcp`.
    let client = try LoopbackClient(port: tcpPort)
    #expect(client.send("a") && client.read(count: 1) == Array("a".utf8))

    // A bad listener: NACKed with the resource and field path; the old config keeps serving.
    try await plane.set(Plane.listenerType, version: "l2", resources: Self.listeners(statPrefix: ""))
    let nack = try await plane.nextRequest("LDS NACK") {
      $0.typeURL == Plane.listenerType && $0.errorDetail != nil
    }
    #expect(nack.errorDetail?.message.contains("listeners['http']") == true, "\(nack)")
    #expect(nack.errorDetail?.message.contains("stat_prefix") == true, "\(nack)")
    if !delta { #expect(nack.versionInfo == "l1") }
    #expect(try FileConfigTests.curl(httpPort) == "from-upstream")
    #expect(try FileConfigTests.stat("listener_manager.lds.update_rejected", in: proxy) == "1")

    // `http` changes (in place), `tcp` does not: its connection lives on. RDS moves the route.
    try await plane.set(Plane.listenerType, version: "l3", resources: Self.listeners(statPrefix: "web2"))
    try await plane.nextRequest("LDS ACK l3") {
      $0.typeURL == Plane.listenerType && $0.errorDetail == nil && (delta || $0.versionInfo == "l3")
    }
    try await plane.set(Plane.routeType, version: "r2", resources: Self.routes(direct: "from-rds-v2"))
    #expect(try FileConfigTests.eventually { try FileConfigTests.curl(httpPort) == "from-rds-v2" })
    #expect(client.send("b") && client.read(count: 1) == Array("b".utf8))

    // The stream breaks: the proxy keeps its config, reconnects and says what it holds.
    try await plane.closeStreams(code: 14)
    let again = try await plane.nextRequest("LDS after reconnect", timeout: .seconds(30)) {
      $0.typeURL == Plane.listenerType && ($0.responseNonce ?? "").isEmpty
    }
    if delta {
      #expect(again.initialResourceVersions?.keys.sorted() == ["http", "tcp"], "\(again)")
    } else {
      #expect(again.versionInfo == "l3", "\(again)")
    }
    #expect(try FileConfigTests.curl(httpPort) == "from-rds-v2")
    #expect(client.send("c") && client.read(count: 1) == Array("c".utf8))
    client.close()

    // /config_dump lists the dynamic resources with their versions.
    let (_, dump) = try proxy.request("/config_dump?include_eds")
    #expect(dump.contains("\"dynamic_route_configs\""))
    #expect(dump.contains("\"dynamic_endpoint_configs\""))
  }
}
