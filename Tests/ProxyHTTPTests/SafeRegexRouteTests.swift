import EnvoyAPI
import ProxyCore
import Testing

@testable import ProxyHTTP

/// Routes and header matchers with `safe_regex` go through RE2: a catastrophic-backtracking pattern meets a
/// hostile path in linear time, and RE2-unsupported syntax fails at config load with its field path.
@Suite struct SafeRegexRouteTests {
  func config(pathRegex: String, headerRegex: String? = nil) throws(ProxyConfigError)
    -> HTTPConnectionManagerConfig
  {
    var regexRoute = routeProto(cluster: "regex")
    regexRoute.match.safeRegex.regex = pathRegex
    if let headerRegex {
      var header = Envoy_Config_Route_V3_HeaderMatcher()
      header.name = "x-tenant"
      header.safeRegexMatch.regex = headerRegex
      regexRoute.match.headers = [header]
    }
    let proto = hcmProto(virtualHosts: [
      virtualHostProto("all", domains: ["*"], routes: [regexRoute, routeProto(cluster: "fallback")])
    ])
    return try HTTPConnectionManagerConfig(proto, accessLog: AccessLogSink(validateOnly: true))
  }

  func cluster(_ config: HTTPConnectionManagerConfig, _ path: String, headers: [String: [String]] = [:])
    -> String?
  {
    let request = RouteRequest(path: path, method: "GET", authority: "h", headers: .dictionary(headers))
    guard let route = config.routeConfig.virtualHosts[0].route(for: request),
      case .forward(let forward) = route.action, case .cluster(let name) = forward.cluster
    else { return nil }
    return name
  }

  @Test func hostilePathAgainstABacktrackingPatternIsAnsweredQuickly() throws {
    let config = try config(pathRegex: #"/(a+)+$"#, headerRegex: #"(x+x+)+y"#)
    let hostilePath = "/" + String(repeating: "a", count: 40) + "!"
    let hostileHeader = String(repeating: "x", count: 40)
    let clock = ContinuousClock()
    var chosen: [String?] = []
    let elapsed = clock.measure {
      chosen.append(cluster(config, hostilePath, headers: ["x-tenant": ["xxy"]]))
      chosen.append(cluster(config, "/aaaa?q=1", headers: ["x-tenant": [hostileHeader]]))
    }
    #expect(chosen == ["fallback", "fallback"])
    #expect(elapsed < .seconds(1), "took \(elapsed)")
    // And the route still matches what it should: the path without its query, the header in full.
    #expect(cluster(config, "/aaaa?q=1", headers: ["x-tenant": ["xxy"]]) == "regex")
    #expect(
      cluster(config, "/" + String(repeating: "a", count: 40), headers: ["x-tenant": ["xxxxy"]]) == "regex")
    #expect(cluster(config, "/aaaa", headers: ["x-tenant": ["xxyz"]]) == "fallback")
  }

  @Test(arguments: [#"/(?=api)"#, #"/(a)\1"#, #"/(?<!x)y"#, "/(unclosed"])
  func unsupportedPathRegexFailsAtLoadWithItsPath(regex: String) {
    do {
      _ = try config(pathRegex: regex)
      Issue.record("\(regex) loaded")
    } catch {
      #expect(error.path == "route_config.virtual_hosts[0].routes[0].match.safe_regex")
      #expect(error.message.contains("not a valid RE2 regex"), "\(error.message)")
    }
  }

  @Test func unsupportedHeaderRegexFailsAtLoadWithItsPath() {
    do {
      _ = try config(pathRegex: "/.*", headerRegex: #"^(?!admin).*$"#)
      Issue.record("a lookahead loaded")
    } catch {
      #expect(error.path == "route_config.virtual_hosts[0].routes[0].match.headers[0].safe_regex_match")
      #expect(error.message.contains("(?!"), "\(error.message)")
    }
  }
}
