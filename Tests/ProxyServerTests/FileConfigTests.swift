import Foundation
import TestSupport
import Testing

/// Envoy's filesystem dynamic config (`path_config_source` for CDS and LDS), through the real
/// `pilotfish-proxy`: listeners and clusters come from watched files; an update that changes one listener's
/// filter chain leaves a connection on another listener running; a bad update is rejected and the last good
/// config keeps serving; a removed listener stops accepting and its connections close after the drain time.
@Suite("dynamic config from watched files", .serialized, .timeLimit(.minutes(3)))
struct FileConfigTests {
  static func clusters(upstreamPort: Int) -> String {
    """
    version_info: c1
    resources:
    - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
      name: echo
      connect_timeout: 1s
      load_assignment:
        cluster_name: echo
        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: \(upstreamPort)}}}}]}]
    """
  }

  /// A tcp_proxy listener `tcp` to `echo` (unless `withTCP` is false) and an HTTP listener `web` answering
  /// `body` directly. `tcpCluster` may be made invalid.
  static func listeners(version: String, body: String, withTCP: Bool = true, tcpCluster: String = "echo")
    -> String
  {
    var text = """
      version_info: \(version)
      resources:
      - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
        name: web
        address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        filter_chains:
        - filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: web
              route_config:
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: \(body)}}}]
              http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]

      """
    if withTCP {
      text += """
        - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
          name: tcp
          address: {socket_address: {address: 127.0.0.1, port_value: 0}}
          filter_chains:
          - filters:
            - name: envoy.filters.network.tcp_proxy
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                stat_prefix: tcp
                cluster: "\(tcpCluster)"

        """
    }
    return text
  }

  /// Replaces `path` the way Envoy's docs ask: a new file moved into place.
  static func replace(_ path: String, with text: String) throws {
    let temporary = path + ".new"
    try text.write(toFile: temporary, atomically: false, encoding: .utf8)
    guard rename(temporary, path) == 0 else { throw POSIXError(.EIO) }
  }

  /// `name::address:port` lines of /listeners → port.
  static func port(of name: String, in proxy: ProxyServeTests.RunningProxy) throws -> Int? {
    let (_, text) = try proxy.request("/listeners")
    for line in text.split(separator: "\n") where line.hasPrefix("\(name)::") {
      return line.split(separator: ":").last.flatMap { Int($0) }
    }
    return nil
  }

  static func curl(_ port: Int) throws -> String {
    try ProxyCommandLineTests.runTool("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(port)/"]).stdout
  }

  static func stat(_ name: String, in proxy: ProxyServeTests.RunningProxy) throws -> String? {
    let (_, text) = try proxy.request(
      "/stats?filter=%5E\(name.replacingOccurrences(of: ".", with: "%5C."))%24")
    return text.split(separator: "\n").first.flatMap { $0.split(separator: ":").last }.map {
      $0.trimmingCharacters(in: .whitespaces)
    }
  }

  /// Polls `condition` every 50 ms for up to `seconds`.
  static func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if try condition() { return true }
      usleep(50_000)
    }
    return try condition()
  }

  @Test func listenersAndClustersFollowTheirFiles() throws {
    let upstream = try LoopbackServer(.echo)
    let cds = try ProxyCommandLineTests.write(Self.clusters(upstreamPort: upstream.port), as: "cds.yaml")
    let lds = try ProxyCommandLineTests.write(Self.listeners(version: "l1", body: "v1"), as: "lds.yaml")
    let bootstrap = """
      admin:
        address: {socket_address: {address: 127.0.0.1, port_value: 0}}
      dynamic_resources:
        cds_config: {path_config_source: {path: \(cds)}}
        lds_config: {path_config_source: {path: \(lds)}}
      """
    let proxy = try ProxyServeTests.RunningProxy(bootstrap: bootstrap, extra: ["--drain-time-s", "1"])
    defer { proxy.stop() }
    #expect(proxy.waitUntilLive())
    let listing = try proxy.request("/listeners").1
    let webPort = try #require(try Self.port(of: "web", in: proxy), "\(listing)")
    let tcpPort = try #require(try Self.port(of: "tcp", in: proxy))
    #expect(try Self.curl(webPort) == "v1")
    #expect(try Self.stat("listener_manager.lds.update_success", in: proxy) == "1")
    #expect(try Self.stat("cluster_manager.cds.update_success", in: proxy) == "1")

    // /config_dump shows the dynamic resources with their versions, as istioctl reads them.
    let (_, dump) = try proxy.request("/config_dump")
    let configs =
      (try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])?["configs"]
      as? [[String: Any]]
    let listenerDump = configs?.first { ($0["@type"] as? String)?.hasSuffix("ListenersConfigDump") == true }
    #expect(listenerDump?["version_info"] as? String == "l1")
    let dynamicListeners = listenerDump?["dynamic_listeners"] as? [[String: Any]]
    #expect(Set(dynamicListeners?.compactMap { $0["name"] as? String } ?? []) == ["web", "tcp"])
    let web = dynamicListeners?.first { $0["name"] as? String == "web" }?["active_state"] as? [String: Any]
    #expect((web?["listener"] as? [String: Any])?["name"] as? String == "web")
    let clusterDump = configs?.first { ($0["@type"] as? String)?.hasSuffix("ClustersConfigDump") == true }
    #expect((clusterDump?["dynamic_active_clusters"] as? [[String: Any]])?.count == 1)

    // A long-lived connection through `tcp`.
    let client = try LoopbackClient(port: tcpPort)
    #expect(client.send("a"))
    #expect(client.read(count: 1) == Array("a".utf8))

    // `web` changes (its one chain): updated in place; `tcp` is untouched and the connection lives on.
    try Self.replace(lds, with: Self.listeners(version: "l2", body: "v2"))
    #expect(try Self.eventually { try Self.curl(webPort) == "v2" })
    #expect(try Self.port(of: "web", in: proxy) == webPort)
    #expect(try Self.stat("listener_manager.listener_in_place_updated", in: proxy) == "1")
    #expect(client.send("b"))
    #expect(client.read(count: 1) == Array("b".utf8))

    // A bad update (tcp_proxy without a cluster) is rejected; the last good config keeps serving.
    try Self.replace(lds, with: Self.listeners(version: "l3", body: "v3", tcpCluster: ""))
    #expect(try Self.eventually { try Self.stat("listener_manager.lds.update_rejected", in: proxy) == "1" })
    #expect(try Self.curl(webPort) == "v2")
    #expect(client.send("c"))
    #expect(client.read(count: 1) == Array("c".utf8))

    // `tcp` removed: it stops accepting at once, and its connection closes when the drain time (1 s) is over.
    try Self.replace(lds, with: Self.listeners(version: "l4", body: "v2", withTCP: false))
    #expect(try Self.eventually { try Self.port(of: "tcp", in: proxy) == nil })
    #expect(throws: (any Error).self) { _ = try LoopbackClient(port: tcpPort) }
    #expect(client.readAll() == [])  // EOF once the drain closes it
    client.close()
    #expect(try Self.stat("listener_manager.listener_removed", in: proxy) == "1")
  }
}
