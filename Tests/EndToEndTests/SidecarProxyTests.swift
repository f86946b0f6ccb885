internal import Foundation
internal import TestSupport
internal import Testing

/// The proxy behind real interception rules: a pod namespace with `pilotfish istio-iptables` REDIRECT
/// rules and `pilotfish-proxy` running as uid 1337 with an Istio-shaped static config (virtualOutbound with
/// use_original_dst and a hand-off listener, virtualInbound with the original_dst listener filter and the
/// 127.0.0.6 passthrough).
@Suite("pilotfish-proxy behind interception rules", .serialized, .enabled(if: Privilege.shouldRun, "needs root (network namespaces)"))
struct SidecarProxyTests {
  static var proxyBinary: String {
    URL(fileURLWithPath: PodNetwork.pilotfish).deletingLastPathComponent().appendingPathComponent(
      "pilotfish-proxy"
    ).path
  }

  static func bootstrap(remoteV4: String) -> String {
    func tcpProxy(_ prefix: String, _ cluster: String) -> String {
      #"{"name":"envoy.filters.network.tcp_proxy","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy","stat_prefix":"\#(prefix)","cluster":"\#(cluster)"}}"#
    }
    func listenerFilter(_ name: String, _ type: String) -> String {
      #"{"name":"envoy.filters.listener.\#(name)","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.\#(name).v3.\#(type)"}}"#
    }
    return #"""
      {"node":{"id":"sidecar~10.0.0.2~app.default~default.svc.cluster.local","cluster":"app.default"},
       "admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":15000}}},
       "static_resources":{
        "listeners":[
         {"name":"virtualOutbound","address":{"socket_address":{"address":"0.0.0.0","port_value":15001}},
          "use_original_dst":true,"traffic_direction":"OUTBOUND",
          "filter_chains":[
           {"name":"virtualOutbound-blackhole","filter_chain_match":{"destination_port":15001},"filters":[\#(tcpProxy("BlackHoleCluster", "BlackHoleCluster"))]},
           {"name":"virtualOutbound-catchall-tcp","filters":[
             {"name":"istio.stats","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/stats.PluginConfig","value":{}}},
             \#(tcpProxy("PassthroughCluster", "PassthroughCluster"))]}]},
         {"name":"virtualOutbound6","address":{"socket_address":{"address":"::","port_value":15001,"ipv4_compat":false}},
          "use_original_dst":true,"traffic_direction":"OUTBOUND",
          "filter_chains":[{"filters":[\#(tcpProxy("PassthroughCluster6", "PassthroughCluster"))]}]},
         {"name":"0.0.0.0_9090","address":{"socket_address":{"address":"0.0.0.0","port_value":9090}},"bind_to_port":false,
          "traffic_direction":"OUTBOUND","filter_chains":[{"filters":[\#(tcpProxy("outbound_9090", "rerouted"))]}]},
         {"name":"virtualInbound","address":{"socket_address":{"address":"0.0.0.0","port_value":15006}},
          "traffic_direction":"INBOUND",
          "listener_filters":[\#(listenerFilter("original_dst", "OriginalDst")),\#(listenerFilter("tls_inspector", "TlsInspector")),\#(listenerFilter("http_inspector", "HttpInspector"))],
          "listener_filters_timeout":"1s","continue_on_listener_filters_timeout":true,
          "filter_chains":[
           {"name":"virtualInbound-blackhole","filter_chain_match":{"destination_port":15006},"filters":[\#(tcpProxy("BlackHoleCluster", "BlackHoleCluster"))]},
           {"name":"virtualInbound","filter_chain_match":{"transport_protocol":"raw_buffer"},"filters":[\#(tcpProxy("InboundPassthroughCluster", "InboundPassthroughCluster"))]}]},
         {"name":"virtualInbound6","address":{"socket_address":{"address":"::","port_value":15006}},
          "traffic_direction":"INBOUND","listener_filters":[\#(listenerFilter("original_dst", "OriginalDst"))],
          "filter_chains":[{"filters":[\#(tcpProxy("InboundPassthroughCluster", "InboundPassthroughCluster"))]}]}],
        "clusters":[
         {"name":"BlackHoleCluster","type":"STATIC","connect_timeout":"10s"},
         {"name":"PassthroughCluster","type":"ORIGINAL_DST","lb_policy":"CLUSTER_PROVIDED","connect_timeout":"10s"},
         {"name":"InboundPassthroughCluster","type":"ORIGINAL_DST","lb_policy":"CLUSTER_PROVIDED","connect_timeout":"10s",
          "upstream_bind_config":{"source_address":{"address":"127.0.0.6","port_value":0},"extra_source_addresses":[{"address":{"address":"::6","port_value":0}}]}},
         {"name":"rerouted","type":"STATIC","connect_timeout":"2s","load_assignment":{"cluster_name":"rerouted","endpoints":[{"lb_endpoints":[
           {"endpoint":{"address":{"socket_address":{"address":"\#(remoteV4)","port_value":7070}}}}]}]}}]}}
      """#
  }

  @Test func outboundPassthroughHandOffAndInboundPassthrough() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let install = try net.interception([
      "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-b", "*", "-d",
      "15000,15020,15021,15090", "--dual-stack",
    ])
    #expect(install.status == 0, "install failed: \(install.stderr)")
    try net.serve(in: net.pod, tcp: [8000])
    try net.serve(in: net.remote, tcp: [8080, 9090, 7070])

    let config = FileManager.default.temporaryDirectory.appendingPathComponent("pf-sidecar-\(net.pod).json")
      .path
    try Self.bootstrap(remoteV4: net.remoteV4).write(toFile: config, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: config) }
    let proxy = Process()
    proxy.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    proxy.arguments = [
      "netns", "exec", net.pod, "setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups",
      Self.proxyBinary,
      "-c", config, "--concurrency", "2", "--drain-time-s", "1", "--allow-unknown-static-fields",
    ]
    let log = Pipe()
    proxy.standardError = log
    try proxy.run()
    defer { if proxy.isRunning { kill(proxy.processIdentifier, SIGKILL) } }
    #expect(try waitUntilLive(net), "proxy did not become LIVE")

    // Outbound: the application's connection keeps its destination (passthrough via SO_ORIGINAL_DST).
    let direct = try net.connect(from: net.pod, to: net.remoteV4, port: 8080)
    #expect(direct.hasPrefix("port=8080 orig=\(net.remoteV4):8080 peer=\(net.podV4):"), "\(direct)")
    let direct6 = try net.connect(from: net.pod, to: net.remoteV6, port: 8080)
    #expect(direct6.hasPrefix("port=8080 orig=[\(net.remoteV6)]:8080"), "\(direct6)")
    // Hand-off: port 9090 has its own (bind_to_port false) listener, which routes to 7070.
    let handedOff = try net.connect(from: net.pod, to: net.remoteV4, port: 9090)
    #expect(handedOff.hasPrefix("port=7070 "), "\(handedOff)")
    // Inbound: the app sees the connection from 127.0.0.6 (passthrough source), to its own port.
    let inbound = try net.connect(from: net.remote, to: net.podV4, port: 8000)
    #expect(inbound.hasPrefix("port=8000 orig=\(net.podV4):8000 peer=127.0.0.6:"), "\(inbound)")
    // IPv6: the init step put ::6 on lo (REDIRECT mode with IPv6 too), so the passthrough binds it and the
    // app sees the connection from ::6; any other source would loop back into the inbound capture.
    let inbound6 = try net.connect(from: net.remote, to: net.podV6, port: 8000)
    #expect(inbound6.hasPrefix("port=8000 orig=[\(net.podV6)]:8000 peer=[::6]:"), "\(inbound6)")
    #expect(try net.exec(net.pod, ["ip", "-6", "addr", "show", "dev", "lo"]).stdout.contains("inet6 ::6/128"))
    // A connection made straight to 15001 is not proxied back to itself: the blackhole chain closes it.
    #expect(try net.connect(from: net.pod, to: "127.0.0.1", port: 15001) == "")

    let stats = try net.exec(net.pod, ["curl", "-s", "http://127.0.0.1:15000/stats?usedonly"]).stdout
    #expect(stats.contains("listener.0.0.0.0_15001.downstream_cx_total: 2"), "\(stats)")
    #expect(stats.contains("tcp.outbound_9090.downstream_cx_total: 1"))
    #expect(stats.contains("cluster.BlackHoleCluster.upstream_cx_none_healthy: 1"))
    #expect(stats.contains("cluster.InboundPassthroughCluster.upstream_cx_total: 2"))
    #expect(!stats.contains("cluster.InboundPassthroughCluster.upstream_cx_connect_fail"))
    #expect(!stats.contains("cluster.InboundPassthroughCluster.bind_errors"))
    #expect(stats.contains("cluster.PassthroughCluster.upstream_cx_total: 2"))
    #expect(stats.contains("listener.[__]_15001.downstream_cx_total: 1"))

    // pilot-agent's drain: inbound listeners stop accepting after --drain-time-s; outbound keeps working.
    let drain = try net.exec(
      net.pod, ["curl", "-s", "-XPOST", "http://127.0.0.1:15000/drain_listeners?inboundonly&graceful"])
    #expect(drain.stdout == "OK\n")
    let listenersGone = poll(seconds: 5) {
      (try? net.exec(net.pod, ["ss", "-ltnH", "sport = :15006"]).stdout.isEmpty) ?? false
    }
    #expect(listenersGone, "15006 still listening after the drain time")
    #expect(try net.connect(from: net.pod, to: net.remoteV4, port: 8080).hasPrefix("port=8080"))

    // SIGTERM: clean exit.
    kill(proxy.processIdentifier, SIGTERM)
    let termination = ChildProcess.reap(proxy, timeout: .seconds(30))
    #expect(
      termination == .exited(0),
      "\(termination): \(String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
    #expect(try net.interception(["--cleanup-only"]).status == 0)
  }

  private func waitUntilLive(_ net: PodNetwork) throws -> Bool {
    poll(seconds: 20) {
      (try? net.exec(net.pod, ["curl", "-s", "http://127.0.0.1:15000/ready"]).stdout) == "LIVE\n"
    }
  }

  private func poll(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if condition() { return true }
      usleep(50_000)
    }
    return condition()
  }
}
