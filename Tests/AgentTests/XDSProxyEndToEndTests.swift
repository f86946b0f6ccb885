import Foundation
import TestSupport
import Testing

@testable import Agent

/// The xDS path of a real sidecar, end to end: `pilotfish-proxy` → the agent's xDS proxy (its Unix socket,
/// as in Istio's bootstrap) → a control plane standing in for istiod on TCP (Tests/Helpers/xds_control_plane.py
/// on the official Envoy protos). The config the control plane pushes reaches the proxy through the relay,
/// the proxy's ACK reaches the control plane, and traffic flows through the pushed listener.
@Suite(
  "pilotfish-proxy behind the agent's xDS proxy", .serialized, .timeLimit(.minutes(3)),
  .enabled(if: XDSControlPlaneProcess.shouldRun, "\(XDSControlPlaneProcess.missing)"))
struct XDSProxyEndToEndTests {
  @Test func configFromIstiodReachesTheProxyThroughTheRelay() async throws {
    let plane = try await XDSControlPlaneProcess.start(tcp: true)
    defer { plane.stop() }
    let istiodPort = try #require(plane.port)
    let relay = try await XDSProxyTests.ProxyUnderTest(upstreamPort: istiodPort)
    let echo = try LoopbackServer(.echo)

    let directory = relay.directory
    let bootstrap = directory + "/envoy.yaml"
    let adminFile = directory + "/admin"
    try """
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    node: {id: "sidecar~10.0.0.1~app.default~default.svc.cluster.local", cluster: app.default}
    dynamic_resources:
      ads_config:
        api_type: DELTA_GRPC
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
          endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: {path: \(relay.socketPath)}}}}]}]
    """.write(toFile: bootstrap, atomically: true, encoding: .utf8)
    let proxy = Process()
    proxy.executableURL = URL(
      fileURLWithPath: try builtProduct("pilotfish-proxy", packageRoot: Binaries.packageRoot.path))
    proxy.arguments = ["-c", bootstrap, "--admin-address-path", adminFile, "--concurrency", "1"]
    proxy.standardOutput = FileHandle.nullDevice
    proxy.standardError = FileHandle.nullDevice
    try proxy.run()
    defer {
      if proxy.isRunning { kill(proxy.processIdentifier, SIGKILL) }
      _ = ChildProcess.reap(proxy, timeout: .seconds(5))
    }

    // The proxy's subscriptions arrive at "istiod" through the relay; the push goes back the same way.
    typealias Plane = XDSControlPlaneProcess
    let first = try await plane.nextRequest("CDS subscription via the relay") {
      $0.typeURL == Plane.clusterType
    }
    #expect(first.nodeID == "sidecar~10.0.0.1~app.default~default.svc.cluster.local")
    try await plane.set(
      Plane.clusterType, version: "c1",
      resources: [
        #"{"name":"echo","type":"STATIC","connect_timeout":"1s","load_assignment":{"cluster_name":"echo","endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":\#(echo.port)}}}}]}]}}"#
      ])
    try await plane.set(
      Plane.listenerType, version: "l1",
      resources: [
        #"{"name":"tcp","address":{"socket_address":{"address":"127.0.0.1","port_value":0}},"filter_chains":[{"filters":[{"name":"envoy.filters.network.tcp_proxy","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"tcp","cluster":"echo"}}]}]}"#
      ])
    try await plane.nextRequest("LDS ACK via the relay") {
      $0.typeURL == Plane.listenerType && !($0.responseNonce ?? "").isEmpty && $0.errorDetail == nil
    }

    // Traffic through the pushed listener.
    #expect(await eventually { FileManager.default.fileExists(atPath: adminFile) })
    let admin = try String(contentsOfFile: adminFile, encoding: .utf8).trimmingCharacters(
      in: .whitespacesAndNewlines)
    var port: Int?
    #expect(
      try await eventually {
        let listing = try Binaries.run("/usr/bin/curl", ["-s", "http://\(admin)/listeners"]).output
        port = listing.split(separator: "\n").first { $0.hasPrefix("tcp::") }?.split(separator: ":").last
          .flatMap { Int($0) }
        return port != nil
      })
    let client = try LoopbackClient(port: try #require(port))
    #expect(client.send("through the mesh") && client.read(count: 16) == Array("through the mesh".utf8))
    client.close()
    // The proxy goes first: the relay's graceful shutdown waits for the streams it carries.
    kill(proxy.processIdentifier, SIGKILL)
    _ = ChildProcess.reap(proxy, timeout: .seconds(5))
    await relay.stop()
  }
}
