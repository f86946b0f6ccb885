import EnvoyAPI
import Foundation
import Logging
import ProxyServer
import Testing

/// Envoy names a static listener that has none with a random UUID; so does pilotfish-proxy (an LDS
/// resource without a name stays an error: ProxyCoreTests).
@Suite struct StaticListenerNameTests {
  static let bootstrap = """
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    static_resources:
      clusters:
      - name: backend
        load_assignment:
          cluster_name: backend
          endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]
      listeners:
      - address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        filter_chains:
        - filters:
          - name: envoy.filters.network.tcp_proxy
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: a
              cluster: backend
              access_log:
              - name: envoy.access_loggers.stdout
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                  log_format:
                    json_format: {code: "%RESPONSE_CODE%", cluster: "%UPSTREAM_CLUSTER_RAW%"}
      - name: named
        address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: b, cluster: backend}}]}]
      - address: {socket_address: {address: 127.0.0.1, port_value: 0}}
        filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: c, cluster: backend}}]}]
    """

  @Test func unnamedStaticListenersGetUniqueUUIDs() throws {
    let path = try BootstrapLoaderTests.write(Self.bootstrap, as: "envoy.yaml")
    var options = ProxyOptions()
    options.configPath = path
    options.mode = .validate
    let bootstrap = try ProxyMain.loadAndValidate(options, logger: Logger(label: "test"))
    let names = bootstrap.staticResources.listeners.map(\.name)
    #expect(names.count == 3)
    #expect(names[1] == "named")
    for i in [0, 2] {
      #expect(UUID(uuidString: names[i]) != nil, "\(names[i])")
      #expect(names[i] == names[i].lowercased())
    }
    #expect(Set(names).count == 3)
    // Named already: nothing changes.
    #expect(StaticResources.namingListeners(bootstrap).staticResources.listeners.map(\.name) == names)
  }

  @Test func validateModeAcceptsUnnamedListeners() throws {
    let (path, result) = try ProxyCommandLineTests.validate(Self.bootstrap, as: "envoy.yaml")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout == "configuration '\(path)' OK\n")
  }
}
