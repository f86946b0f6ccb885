import EnvoyAPI
import ProxyCore
import SwiftProtobuf
import Testing

@testable import ProxyHTTP

@Suite struct HTTPConnectionManagerConfigTests {
  func base() -> HTTPConnectionManagerConfig.Proto {
    hcmProto(virtualHosts: [virtualHostProto("all", domains: ["*"], routes: [routeProto()])])
  }

  @Test func validConfigConverts() throws {
    var proto = base()
    proto.serverName = "istio-envoy"
    proto.streamIdleTimeout = .init(seconds: 0)
    proto.commonHTTPProtocolOptions.idleTimeout = .init(seconds: 30)
    var route = routeProto()
    route.route.timeout = .init(seconds: 0)
    proto.routeConfig.virtualHosts[0].routes = [route]
    let config = try HTTPConnectionManagerConfig(proto, accessLog: AccessLogSink(validateOnly: true))
    #expect(config.statPrefix == "ingress")
    #expect(config.serverName == "istio-envoy")
    #expect(config.streamIdleTimeout == nil)
    #expect(config.idleTimeout == .seconds(30))
    #expect(config.clusterNames == ["upstream"])
    guard case .forward(let forward) = config.routeConfig.virtualHosts[0].routes[0].action else {
      Issue.record("not a forward")
      return
    }
    #expect(forward.timeout == nil)
  }

  @Test func defaultRouteTimeoutIs15s() throws {
    let config = try HTTPConnectionManagerConfig(base(), accessLog: AccessLogSink(validateOnly: true))
    guard case .forward(let forward) = config.routeConfig.virtualHosts[0].routes[0].action else { return }
    #expect(forward.timeout == .seconds(15))
  }

  @Test func errorsCarryExactPaths() {
    var proto = base()
    proto.statPrefix = ""
    #expect(configError(proto) == ProxyConfigError("stat_prefix", "must not be empty"))

    proto = base()
    proto.codecType = .http2
    #expect(configError(proto)?.path == "codec_type")
    #expect(configError(proto)?.message.contains("not supported yet") == true)

    // RDS: over ADS only, and the name is kept for the route table's provider.
    proto = base()
    proto.rds.routeConfigName = "80"
    #expect(configError(proto)?.path == "rds.config_source")
    proto.rds.configSource.ads = .init()
    #expect(configError(proto) == nil)
    #expect((try? HTTPConnectionManagerConfig(proto, accessLog: AccessLogSink()))?.rdsRouteConfigName == "80")
    proto.rds.routeConfigName = ""
    #expect(configError(proto)?.path == "rds.route_config_name")

    proto = base()
    var routes = [routeProto(), routeProto(), routeProto()]
    routes[2].match.pathSpecifier = nil
    proto.routeConfig.virtualHosts[0].routes = routes
    #expect(
      configError(proto)
        == ProxyConfigError(
          "route_config.virtual_hosts[0].routes[2].match", "needs prefix, path or safe_regex"))

    proto = base()
    routes = [routeProto()]
    routes[0].match.safeRegex.regex = "(unclosed"
    proto.routeConfig.virtualHosts[0].routes = routes
    #expect(configError(proto)?.path == "route_config.virtual_hosts[0].routes[0].match.safe_regex")

    proto = base()
    proto.routeConfig.virtualHosts.append(virtualHostProto("dup", domains: ["a", "*"], routes: []))
    #expect(configError(proto)?.path == "route_config.virtual_hosts[1].domains[1]")

    proto = base()
    proto.routeConfig.virtualHosts[0].domains = ["a.*.com"]
    #expect(configError(proto)?.path == "route_config.virtual_hosts[0].domains[0]")

    proto = base()
    var weighted = routeProto()
    var w = Envoy_Config_Route_V3_WeightedCluster.ClusterWeight()
    w.name = ""
    weighted.route.weightedClusters.clusters = [w]
    proto.routeConfig.virtualHosts[0].routes = [weighted]
    #expect(
      configError(proto)
        == ProxyConfigError(
          "route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters[0].name",
          "must not be empty"))

    proto = base()
    var direct = Envoy_Config_Route_V3_Route()
    direct.match.prefix = "/"
    direct.directResponse.status = 99
    proto.routeConfig.virtualHosts[0].routes = [direct]
    #expect(configError(proto)?.path == "route_config.virtual_hosts[0].routes[0].direct_response.status")

    proto = base()
    var header = Envoy_Config_Route_V3_HeaderMatcher()
    header.name = "x"
    header.prefixMatch = ""
    var r = routeProto()
    r.match.headers = [header]
    proto.routeConfig.virtualHosts[0].routes = [r]
    #expect(
      configError(proto)?.path == "route_config.virtual_hosts[0].routes[0].match.headers[0].prefix_match")

    proto = base()
    var add = Envoy_Config_Core_V3_HeaderValueOption()
    add.header.key = ":path"
    add.header.value = "/x"
    proto.routeConfig.virtualHosts[0].requestHeadersToAdd = [add]
    #expect(configError(proto)?.path == "route_config.virtual_hosts[0].request_headers_to_add[0].header.key")
  }

  @Test func httpFilters() throws {
    // Router must be last.
    var proto = base()
    var cors = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
    cors.name = "envoy.filters.http.cors"
    cors.typedConfig = try Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Cors_V3_Cors())
    proto.httpFilters = [routerFilter(), cors]
    #expect(configError(proto)?.path == "http_filters[0]")

    // Harmless Envoy filters and Istio's are skipped with warnings.
    var istio = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
    istio.name = "istio.metadata_exchange"
    var typed = Xds_Type_V3_TypedStruct()
    typed.typeURL = "type.googleapis.com/io.istio.http.peer_metadata.Config"
    istio.typedConfig = try Google_Protobuf_Any(message: typed)
    var stats = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
    stats.name = "envoy.filters.http.grpc_stats"
    proto.httpFilters = [istio, stats, cors, routerFilter()]
    let config = try HTTPConnectionManagerConfig(proto, accessLog: AccessLogSink(validateOnly: true))
    #expect(config.warnings.map(\.path) == ["http_filters[0]", "http_filters[1]", "http_filters[2]"])

    // Security filters are never skipped.
    var rbac = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
    rbac.name = "envoy.filters.http.rbac"
    var any = Google_Protobuf_Any()
    any.typeURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
    rbac.typedConfig = any
    proto.httpFilters = [rbac, routerFilter()]
    let error = configError(proto)
    #expect(error?.path == "http_filters[0].typed_config")
    #expect(error?.message.contains("envoy.filters.http.rbac") == true)

    proto.httpFilters = []
    #expect(configError(proto)?.path == "http_filters")
  }

  @Test func registeredWithTheNetworkFilterRegistry() throws {
    var registry = NetworkFilterRegistry.withTcpProxy()
    HTTPConnectionManagerFilter.register(into: &registry)
    #expect(registry.typeName(forFilterName: "envoy.filters.network.http_connection_manager") != nil)
    var listener = Envoy_Config_Listener_V3_Listener()
    listener.name = "l"
    listener.address.socketAddress.address = "127.0.0.1"
    listener.address.socketAddress.portValue = 0
    var chain = Envoy_Config_Listener_V3_FilterChain()
    var filter = Envoy_Config_Listener_V3_Filter()
    filter.name = "envoy.filters.network.http_connection_manager"
    var bad = base()
    bad.routeConfig.virtualHosts[0].routes[0].route.cluster = ""
    filter.typedConfig = try Google_Protobuf_Any(message: bad)
    chain.filters = [filter]
    listener.filterChains = [chain]
    let stats = try StatsStore(config: StatsConfig())
    var warnings: [ProxyConfigWarning] = []
    do {
      _ = try Listener(
        listener, filters: registry,
        context: FilterBuildContext(stats: stats, accessLog: AccessLogSink(validateOnly: true)),
        warnings: &warnings)
      Issue.record("expected an error")
    } catch {
      #expect(
        error.path
          == "filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster")
    }
    listener.filterChains[0].filters[0].typedConfig = try Google_Protobuf_Any(message: base())
    let converted = try Listener(
      listener, filters: registry,
      context: FilterBuildContext(stats: stats, accessLog: AccessLogSink(validateOnly: true)),
      warnings: &warnings)
    #expect(converted.filterChains[0].terminal.filterName == "envoy.filters.network.http_connection_manager")
    #expect(converted.filterChains[0].terminal.clusterNames == ["upstream"])
  }
}

@Suite struct RoutingTableTests {
  func table(_ domains: [[String]]) throws -> RouteConfiguration {
    try RouteConfiguration(
      name: "t",
      virtualHosts: domains.enumerated().map {
        VirtualHost(name: "v\($0.offset)", domains: $0.element, routes: [])
      })
  }

  @Test func virtualHostPrecedence() throws {
    let config = try table([
      ["*"], ["*.example.com"], ["*.b.example.com"], ["api.*"], ["api.example.com"], ["a.example.com:8080"],
      ["api.ex*"],
    ])
    let cases: [(String, String?)] = [
      ("api.example.com", "v4"),  // exact beats every wildcard
      ("API.Example.COM", "v4"),  // case-insensitive
      ("x.b.example.com", "v2"),  // longest suffix wildcard
      ("x.example.com", "v1"),
      (".example.com", "v0"),  // a wildcard never matches the empty string → catch-all
      ("api.other", "v3"),  // prefix wildcard after suffix wildcards
      ("api.exotic", "v6"),  // longest prefix wildcard
      ("a.example.com:8080", "v5"),
      ("a.example.com:9090", "v0"),  // ports are part of the host unless ignored
      ("nothing", "v0"),
    ]
    for (host, expected) in cases {
      #expect(config.virtualHost(forHost: host)?.name == expected, "host \(host)")
    }
    var ignoring = try table([["a.example.com"]])
    ignoring.ignorePortInHostMatching = true
    #expect(ignoring.virtualHost(forHost: "a.example.com:9090")?.name == "v0")
    #expect(ignoring.virtualHost(forHost: "b.example.com") == nil)
  }

  @Test func hostPort() {
    #expect(HostPort.stripPort("h:80") == "h")
    #expect(HostPort.stripPort("[::1]:80") == "[::1]")
    #expect(HostPort.stripPort("[::1]") == "[::1]")
    #expect(HostPort.stripPort("h") == "h")
    #expect(HostPort.port("h:8080") == 8080)
    #expect(HostPort.port("h") == nil)
  }

  func request(_ path: String, headers: [String: [String]] = [:], method: String = "GET") -> RouteRequest {
    RouteRequest(path: path, method: method, authority: "h", headers: .dictionary(headers))
  }

  @Test func routeMatching() throws {
    let regex = try StringMatcher(.safeRegex("/items/[0-9]+"))
    let cases: [(RouteMatch, String, [String: [String]], Bool)] = [
      (RouteMatch(path: .prefix("/api")), "/api/x", [:], true),
      (RouteMatch(path: .prefix("/api")), "/API/x", [:], false),
      (RouteMatch(path: .prefix("/api"), caseSensitive: false), "/API/x", [:], true),
      (RouteMatch(path: .prefix("/a?b")), "/a?b=1", [:], true),  // prefix sees the query
      (RouteMatch(path: .path("/exact")), "/exact?q=1", [:], true),
      (RouteMatch(path: .path("/exact")), "/exact/", [:], false),
      (RouteMatch(path: .path("/Exact"), caseSensitive: false), "/exact", [:], true),
      (RouteMatch(path: .safeRegex(regex)), "/items/42?x", [:], true),
      (RouteMatch(path: .safeRegex(regex)), "/items/42/more", [:], false),
      (
        RouteMatch(
          path: .prefix("/"),
          headers: [HeaderMatcher(name: "X-Env", kind: .string(try StringMatcher(.exact("prod"))))]),
        "/", ["x-env": ["prod"]], true
      ),
      (
        RouteMatch(
          path: .prefix("/"),
          headers: [HeaderMatcher(name: "x-env", kind: .string(try StringMatcher(.exact("prod"))))]),
        "/", ["x-env": ["dev"]], false
      ),
      (
        RouteMatch(
          path: .prefix("/"),
          headers: [
            HeaderMatcher(name: "x-env", kind: .string(try StringMatcher(.exact("prod"))), invert: true)
          ]),
        "/", ["x-env": ["dev"]], true
      ),
      (
        RouteMatch(path: .prefix("/"), headers: [HeaderMatcher(name: "x-a", kind: .present(true))]), "/", [:],
        false
      ),
      (
        RouteMatch(path: .prefix("/"), headers: [HeaderMatcher(name: "x-a", kind: .present(false))]), "/",
        [:], true
      ),
      (
        RouteMatch(
          path: .prefix("/"),
          headers: [HeaderMatcher(name: "x-a", kind: .string(try StringMatcher(.suffix("z"))))]),
        "/", ["x-a": ["y", "z"]], true
      ),
      (
        RouteMatch(
          path: .prefix("/"),
          headers: [HeaderMatcher(name: ":method", kind: .string(try StringMatcher(.exact("POST"))))]),
        "/", [:], false
      ),
    ]
    for (i, (match, path, headers, expected)) in cases.enumerated() {
      #expect(match.matches(request(path, headers: headers)) == expected, "case \(i)")
    }
  }

  @Test func weightedClusterChoice() {
    let forward = ForwardAction(
      cluster: .weighted([
        .init(name: "a", weight: 1), .init(name: "b", weight: 0), .init(name: "c", weight: 3),
      ]))
    #expect(forward.chooseCluster(random: { _ in 0 }).name == "a")
    #expect(forward.chooseCluster(random: { _ in 1 }).name == "c")
    #expect(forward.chooseCluster(random: { _ in 3 }).name == "c")
  }

  @Test func redirectLocation() {
    var redirect = RedirectAction()
    redirect.scheme = "https"
    #expect(redirect.location(for: request("/p?q"), matchedPrefix: "/") == "https://h/p?q")
    redirect.host = "new.example"
    redirect.path = .path("/landing")
    redirect.stripQuery = true
    #expect(redirect.location(for: request("/p?q"), matchedPrefix: "/") == "https://new.example/landing")
    var prefix = RedirectAction()
    prefix.path = .prefix("/v2/")
    prefix.port = 8443
    #expect(prefix.location(for: request("/v1/x?y=1"), matchedPrefix: "/v1/") == "http://h:8443/v2/x?y=1")
  }
}
