import EnvoyAPI
import Foundation
import Logging
import ProxyServer
import Testing

@Suite struct BootstrapLoaderTests {
  static func write(_ text: String, as name: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pf-loader-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent(name)
    try text.write(to: file, atomically: true, encoding: .utf8)
    return file.path
  }

  @Test func configYAMLMergesOverTheFile() throws {
    let path = try Self.write(Fixtures.istioSidecarJSON, as: "envoy-rev.json")
    let overlay = """
      node:
        id: overridden
        metadata: {EXTRA: "1"}
      static_resources:
        clusters:
        - name: extra
          connect_timeout: 2s
      admin:
        address: {socket_address: {address: 127.0.0.1, port_value: 15001}}
      """
    let loaded = try BootstrapLoader.load(configPath: path, configYAML: overlay, allowUnknownFields: false)
    let bootstrap = loaded.bootstrap
    #expect(bootstrap.node.id == "overridden")
    #expect(bootstrap.node.cluster == "productpage.default")  // kept: not in the overlay
    #expect(bootstrap.node.metadata.fields["NAMESPACE"]?.stringValue == "default")  // maps merge
    #expect(bootstrap.node.metadata.fields["EXTRA"]?.stringValue == "1")
    #expect(
      bootstrap.staticResources.clusters.map(\.name) == ["prometheus_stats", "agent", "xds-grpc", "extra"])
    #expect(bootstrap.staticResources.clusters[3].connectTimeout.seconds == 2)
    #expect(bootstrap.admin.address.socketAddress.portValue == 15001)
    #expect(bootstrap.staticResources.listeners.count == 1)
    #expect(loaded.warnings.isEmpty)
  }

  @Test func configYAMLAloneIsTheWholeBootstrap() throws {
    let loaded = try BootstrapLoader.load(
      configPath: nil, configYAML: Fixtures.envoyExampleYAML, allowUnknownFields: false)
    #expect(loaded.bootstrap.staticResources.listeners.map(\.name) == ["listener_0"])
    #expect(loaded.bootstrap.staticResources.clusters[0].connectTimeout.nanos == 250_000_000)
  }

  @Test func configYAMLErrorsNameTheFlag() throws {
    let path = try Self.write(Fixtures.envoyExampleYAML, as: "envoy.yaml")
    #expect(
      throws: BootstrapError(
        code: .unknownField, source: "--config-yaml", path: "node",
        message: #"unknown field "idd" in envoy.config.core.v3.Node"#)
    ) {
      try BootstrapLoader.load(
        configPath: path, configYAML: #"{"node": {"idd": "x"}}"#, allowUnknownFields: false)
    }
  }

  @Test func camelCaseNamesAndTypedAnyDecode() throws {
    let json = """
      {"staticResources": {"listeners": [{"name": "l", "address": {"pipe": {"path": "/tmp/l.sock"}},
        "filterChains": [{"filters": [{"name": "tcp", "typedConfig": {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
          "statPrefix": "p", "cluster": "c", "idleTimeout": "1.5s"}}]}]}],
        "clusters": [{"name": "c", "connectTimeout": "1s"}]}}
      """
    let loaded = try BootstrapLoader.decode(json, format: .json, source: "b.json", allowUnknownFields: false)
    let any = loaded.bootstrap.staticResources.listeners[0].filterChains[0].filters[0].typedConfig
    let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: any)
    #expect(proxy.cluster == "c")
    #expect(proxy.idleTimeout.seconds == 1 && proxy.idleTimeout.nanos == 500_000_000)
    try BootstrapValidator(source: "b.json", requireAdmin: false).validate(loaded.bootstrap)
  }

  @Test func pathOfTheFirstBadElementInALaterListener() throws {
    let yaml = """
      static_resources:
        listeners:
        - name: a
          address: {socket_address: {address: 0.0.0.0, port_value: 1}}
        - name: b
          address: {socket_address: {address: 0.0.0.0, port_value: 2}}
          filter_chains:
          - filters:
            - name: x
              typed_config: {"@type": type.googleapis.com/foo.Bar}
      """
    #expect(
      throws: BootstrapError(
        code: .unknownType, source: "envoy.yaml",
        path: "static_resources.listeners[1].filter_chains[0].filters[0]",
        message: #"unknown typed_config type "type.googleapis.com/foo.Bar""#)
    ) {
      try BootstrapLoader.decode(yaml, format: .yaml, source: "envoy.yaml", allowUnknownFields: false)
    }
  }

  @Test func badEnumNameHasAPath() throws {
    let yaml = "static_resources: {clusters: [{name: c, type: STATICK}]}"
    #expect(
      throws: BootstrapError(
        code: .invalidValue, source: "e.yaml", path: "static_resources.clusters[0].type",
        message: #"invalid value "STATICK" (unknown enum value)"#)
    ) {
      try BootstrapLoader.decode(yaml, format: .yaml, source: "e.yaml", allowUnknownFields: false)
    }
  }

  @Test func duplicateClusterAndMissingListenerAddress() throws {
    let dup = try BootstrapLoader.decode(
      "static_resources: {clusters: [{name: c}, {name: c}]}", format: .yaml, source: "e.yaml",
      allowUnknownFields: false)
    #expect(
      throws: BootstrapError(
        code: .invalidConfig, source: "e.yaml", path: "static_resources.clusters[1]",
        message: #"duplicate cluster name "c""#)
    ) { try BootstrapValidator(source: "e.yaml", requireAdmin: false).validate(dup.bootstrap) }
    let noAddress = try BootstrapLoader.decode(
      "static_resources: {listeners: [{name: l}]}", format: .yaml, source: "e.yaml", allowUnknownFields: false
    )
    #expect(
      throws: BootstrapError(
        code: .invalidConfig, source: "e.yaml", path: "static_resources.listeners[0].address",
        message: "listener needs a socket_address or pipe address")
    ) { try BootstrapValidator(source: "e.yaml", requireAdmin: false).validate(noAddress.bootstrap) }
  }

  @Test func serviceFlagsOverrideTheNode() throws {
    let path = try Self.write(Fixtures.istioSidecarJSON, as: "envoy-rev.json")
    var options = ProxyOptions()
    options.configPath = path
    options.mode = .validate
    options.serviceCluster = "c1"
    options.serviceNode = "n1"
    options.serviceZone = "z1"
    let bootstrap = try ProxyMain.loadAndValidate(options, logger: Logger(label: "test"))
    #expect(bootstrap.node.cluster == "c1")
    #expect(bootstrap.node.id == "n1")
    #expect(bootstrap.node.locality.zone == "z1")
  }

  @Test func componentLogLevels() throws {
    let levels = try ProxyOptions.parseComponentLogLevels("upstream:debug,connection:trace")
    #expect(levels.map(\.component) == ["upstream", "connection"])
    #expect(levels.map(\.level) == [.debug, .trace])
    #expect(
      throws: ProxyOptionsError(
        flag: "--component-log-level", message: "unknown log level 'loud' for component 'a'")
    ) {
      try ProxyOptions.parseComponentLogLevels("a:loud")
    }
  }
}

@Suite struct BootstrapFormatTests {
  @Test func binaryBootstrapLoadsAndTextProtoIsRefused() throws {
    let yamlLoaded = try BootstrapLoader.decode(
      Fixtures.envoyExampleYAML, format: .yaml, source: "e.yaml", allowUnknownFields: false)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pf-pb-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let binary = directory.appendingPathComponent("envoy.pb")
    let bytes: [UInt8] = try yamlLoaded.bootstrap.serializedBytes()
    try Data(bytes).write(to: binary)
    let loaded = try BootstrapLoader.load(configPath: binary.path, configYAML: nil, allowUnknownFields: false)
    // (Any contents decoded from JSON and from binary compare unequal, so compare the parts without Any.)
    #expect(loaded.bootstrap.staticResources.clusters == yamlLoaded.bootstrap.staticResources.clusters)
    #expect(loaded.bootstrap.admin == yamlLoaded.bootstrap.admin)
    let any = loaded.bootstrap.staticResources.listeners[0].filterChains[0].filters[0].typedConfig
    #expect(
      try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: any).cluster == "cluster_0")
    let text = directory.appendingPathComponent("envoy.pb_text")
    try Data("node {}".utf8).write(to: text)
    #expect(throws: BootstrapError.self) {
      try BootstrapLoader.load(configPath: text.path, configYAML: nil, allowUnknownFields: false)
    }
  }
}
