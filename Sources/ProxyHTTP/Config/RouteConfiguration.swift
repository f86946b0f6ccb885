package import NIOCore
package import ProxyCore

/// Envoy's `RouteConfiguration`, validated: virtual hosts indexed by domain, plus the header mutations
/// that apply to every route. Selection follows Envoy: exact domain, then the longest `*suffix`
/// wildcard, then the longest `prefix*` wildcard, then `*`. Hosts are compared lower-cased.
package struct RouteConfiguration: Sendable {
  package var name: String
  package var virtualHosts: [VirtualHost]
  package var headers = HeaderMutations()
  /// `ignore_port_in_host_matching`: the Host port is left out of virtual-host selection.
  package var ignorePortInHostMatching = false
  /// Lower-cased exact domain → index into `virtualHosts`.
  private(set) var exact: [String: Int] = [:]
  /// `*suffix` wildcards, longest suffix first.
  private(set) var suffixes: [(suffix: String, index: Int)] = []
  /// `prefix*` wildcards, longest prefix first.
  private(set) var prefixes: [(prefix: String, index: Int)] = []
  private(set) var catchAll: Int?

  /// Builds the domain index. Throws (with the domain's path) for a domain listed twice, as Envoy does.
  package init(name: String, virtualHosts: [VirtualHost]) throws(ProxyConfigError) {
    self.name = name
    self.virtualHosts = virtualHosts
    var seen: [String: Int] = [:]
    for (v, host) in virtualHosts.enumerated() {
      for (d, domain) in host.domains.enumerated() {
        let lower = domain.lowercased()
        let path = "virtual_hosts[\(v)].domains[\(d)]"
        if let other = seen[lower] {
          throw ProxyConfigError(
            path,
            "domain \"\(domain)\" is already used by virtual_hosts[\(other)] (\(virtualHosts[other].name))")
        }
        seen[lower] = v
        if lower == "*" {
          catchAll = v
        } else if lower.hasPrefix("*") {
          suffixes.append((String(lower.dropFirst()), v))
        } else if lower.hasSuffix("*") {
          prefixes.append((String(lower.dropLast()), v))
        } else {
          exact[lower] = v
        }
      }
    }
    // Stable sorts keep config order among equal lengths.
    suffixes = suffixes.enumerated().sorted {
      $0.element.suffix.utf8.count != $1.element.suffix.utf8.count
        ? $0.element.suffix.utf8.count > $1.element.suffix.utf8.count : $0.offset < $1.offset
    }.map(\.element)
    prefixes = prefixes.enumerated().sorted {
      $0.element.prefix.utf8.count != $1.element.prefix.utf8.count
        ? $0.element.prefix.utf8.count > $1.element.prefix.utf8.count : $0.offset < $1.offset
    }.map(\.element)
  }

  /// The virtual host for a Host/:authority value (any case, with or without a port).
  package func virtualHost(forHost rawHost: String) -> VirtualHost? {
    virtualHostIndex(forHost: rawHost).map { virtualHosts[$0] }
  }

  package func virtualHostIndex(forHost rawHost: String) -> Int? {
    var host = rawHost.lowercased()
    if ignorePortInHostMatching { host = HostPort.stripPort(host) }
    if let index = exact[host] { return index }
    // A wildcard never matches the empty string: the host must be longer than the fixed part.
    for (suffix, index) in suffixes where host.utf8.count > suffix.utf8.count && host.hasSuffix(suffix) {
      return index
    }
    for (prefix, index) in prefixes where host.utf8.count > prefix.utf8.count && host.hasPrefix(prefix) {
      return index
    }
    return catchAll
  }
}

/// Host header helpers.
package enum HostPort {
  /// `example.com:80` → `example.com`, `[::1]:80` → `[::1]`; a host without a port is returned as is.
  package static func stripPort(_ host: String) -> String {
    guard let colon = host.lastIndex(of: ":") else { return host }
    if host.hasPrefix("[") {
      // IPv6 literal: only a colon after the closing bracket starts a port.
      guard let close = host.lastIndex(of: "]"), close < colon else { return host }
    }
    let port = host[host.index(after: colon)...]
    guard port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return host }
    return String(host[..<colon])
  }

  /// The port in a Host value, if any.
  package static func port(_ host: String) -> Int? {
    let stripped = stripPort(host)
    guard stripped.utf8.count < host.utf8.count else { return nil }
    return Int(host.dropFirst(stripped.utf8.count + 1))
  }
}

/// Headers added and removed by a route, a virtual host or a route configuration.
package struct HeaderMutations: Sendable, Equatable {
  package enum AppendAction: Sendable, Equatable {
    /// Another line is added (Envoy's default `APPEND_IF_EXISTS_OR_ADD`).
    case append
    /// Added only when the message has no such header.
    case addIfAbsent
    /// Existing lines are replaced.
    case overwrite
    /// Existing lines are replaced; nothing is added when there are none.
    case overwriteIfExists
  }

  package struct Addition: Sendable, Equatable {
    package var name: String
    package var value: String
    package var action: AppendAction
    package var keepEmptyValue = false

    package init(name: String, value: String, action: AppendAction = .append) {
      self.name = name.lowercased()
      self.value = value
      self.action = action
    }
  }

  package var requestToAdd: [Addition] = []
  /// Lower-cased names.
  package var requestToRemove: [String] = []
  package var responseToAdd: [Addition] = []
  package var responseToRemove: [String] = []

  package init() {}

  package var isEmpty: Bool {
    requestToAdd.isEmpty && requestToRemove.isEmpty && responseToAdd.isEmpty && responseToRemove.isEmpty
  }
}

/// Envoy's `VirtualHost`: domains and ordered routes. A class, immutable once built: a request keeps a
/// reference to its virtual host and route, not a copy of their fields.
package final class VirtualHost: Sendable {
  package let name: String
  package let domains: [String]
  package let routes: [Route]
  package let headers: HeaderMutations

  package init(name: String, domains: [String], routes: [Route], headers: HeaderMutations = HeaderMutations())
  {
    self.name = name
    self.domains = domains
    self.routes = routes
    self.headers = headers
  }

  /// The first route whose match accepts the request.
  package func route(for request: RouteRequest) -> Route? {
    routes.first { $0.match.matches(request) }
  }
}

/// What route matching reads from a request.
package struct RouteRequest: Sendable {
  /// Where header values come from: a parsed head over its bytes (no copy until a matcher asks), or a
  /// dictionary (tests, synthetic requests).
  package enum Headers: Sendable {
    case parsed(HTTP1Head, ByteBuffer)
    case dictionary([String: [String]])
  }

  /// The request-target as sent (path and query).
  package var path: String
  package var method: String
  package var authority: String
  package var scheme: String = "http"
  package var headers: Headers

  package init(path: String, method: String, authority: String, headers: Headers) {
    self.path = path
    self.method = method
    self.authority = authority
    self.headers = headers
  }

  /// The path without query and fragment (what `path` and `safe_regex` match).
  package var pathWithoutQuery: Substring {
    let utf8 = path.utf8
    if let cut = utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
      return path[..<cut]
    }
    return path[...]
  }

  /// Values of a header (lower-cased name), pseudo-headers included (`:path`, `:method`,
  /// `:authority`, `:scheme`).
  package func values(of name: String) -> [String] {
    switch name {
    case ":path": return [path]
    case ":method": return [method]
    case ":authority", "host": return [authority]
    case ":scheme": return [scheme]
    default:
      switch headers {
      case .parsed(let head, let bytes): return head.headerValues(named: name, in: bytes)
      case .dictionary(let map): return map[name] ?? []
      }
    }
  }
}

/// Envoy's `Route`: a match and what to do. A class, immutable once built (see `VirtualHost`).
package final class Route: Sendable {
  package let name: String
  package let match: RouteMatch
  package let action: RouteAction
  package let headers: HeaderMutations

  package init(
    name: String = "", match: RouteMatch, action: RouteAction, headers: HeaderMutations = HeaderMutations()
  ) {
    self.name = name
    self.match = match
    self.action = action
    self.headers = headers
  }
}

/// Envoy's `RouteMatch`: a path specifier, case sensitivity and header matchers (all must match).
package struct RouteMatch: Sendable {
  package enum PathSpecifier: Sendable {
    /// Prefix of the whole request-target (query included), as Envoy does.
    case prefix(String)
    /// The path without query string, exactly.
    case path(String)
    /// RE2 full match on the path without query string.
    case safeRegex(StringMatcher)
  }

  package var path: PathSpecifier
  /// `case_sensitive` (default true) applies to `prefix` and `path`.
  package var caseSensitive = true
  package var headers: [HeaderMatcher] = []

  package init(path: PathSpecifier, caseSensitive: Bool = true, headers: [HeaderMatcher] = []) {
    self.path = path
    self.caseSensitive = caseSensitive
    self.headers = headers
  }

  package func matches(_ request: RouteRequest) -> Bool {
    switch path {
    case .prefix(let prefix):
      if prefix.isEmpty { break }
      if caseSensitive {
        guard request.path.utf8.starts(with: prefix.utf8) else { return false }
      } else {
        guard Self.hasPrefixIgnoringCase(request.path, prefix) else { return false }
      }
    case .path(let exact):
      let path = request.pathWithoutQuery
      if caseSensitive {
        guard path.utf8.elementsEqual(exact.utf8) else { return false }
      } else {
        guard path.utf8.count == exact.utf8.count, Self.hasPrefixIgnoringCase(path, exact) else {
          return false
        }
      }
    case .safeRegex(let regex):
      guard regex.matches(String(request.pathWithoutQuery)) else { return false }
    }
    for header in headers where !header.matches(request) { return false }
    return true
  }

  static func hasPrefixIgnoringCase<S: StringProtocol>(_ s: S, _ prefix: String) -> Bool {
    var it = s.utf8.makeIterator()
    for p in prefix.utf8 {
      guard let c = it.next(), lower(c) == lower(p) else { return false }
    }
    return true
  }

  @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }
}

/// Envoy's `HeaderMatcher`. Several lines of one header are matched as their comma-joined value.
package struct HeaderMatcher: Sendable {
  package enum Kind: Sendable {
    case present(Bool)
    case string(StringMatcher)
  }

  /// Lower-cased.
  package var name: String
  package var kind: Kind
  package var invert = false
  package var treatMissingAsEmpty = false

  package init(name: String, kind: Kind, invert: Bool = false) {
    self.name = name.lowercased()
    self.kind = kind
    self.invert = invert
  }

  package func matches(_ request: RouteRequest) -> Bool {
    let values = request.values(of: name)
    var value: String? = values.isEmpty ? nil : values.joined(separator: ",")
    if value == nil && treatMissingAsEmpty { value = "" }
    let result: Bool
    switch kind {
    case .present(let wanted):
      // `present_match: false` matches when the header is absent.
      result = (value != nil) == wanted
    case .string(let matcher):
      guard let value else { return false }  // a missing header never matches, inverted or not
      result = matcher.matches(value)
    }
    return result != invert
  }
}

/// What a matched route does.
package enum RouteAction: Sendable {
  case forward(ForwardAction)
  case directResponse(status: Int, body: String)
  case redirect(RedirectAction)

  /// Clusters the action may use.
  package var clusterNames: [String] {
    if case .forward(let forward) = self {
      switch forward.cluster {
      case .cluster(let name): return [name]
      case .weighted(let clusters): return clusters.map(\.name)
      }
    }
    return []
  }
}

/// `route`: proxy to a cluster.
package struct ForwardAction: Sendable {
  package enum ClusterSpecifier: Sendable, Equatable {
    case cluster(String)
    case weighted([WeightedCluster])
  }

  package struct WeightedCluster: Sendable, Equatable {
    package var name: String
    package var weight: Int
    package var headers = HeaderMutations()
    package var hostRewrite: String?

    package init(name: String, weight: Int) {
      self.name = name
      self.weight = weight
    }
  }

  package var cluster: ClusterSpecifier
  package var prefixRewrite: String?
  package var hostRewrite: String?
  /// Route timeout; nil = none (`timeout: 0s`). Envoy's default is 15 s.
  package var timeout: TimeAmount? = .seconds(15)
  /// 503 (default) or 404 when the cluster is unknown (`cluster_not_found_response_code`).
  package var clusterNotFoundStatus = 503
  /// Upgrade types this route allows or forbids, overriding the connection manager (lower-cased).
  package var upgrades: [String: Bool] = [:]

  package init(cluster: ClusterSpecifier) {
    self.cluster = cluster
  }

  /// Picks a cluster (weighted clusters in proportion to weight) using `random` in `0..<totalWeight`.
  package func chooseCluster(random: (Int) -> Int = { Int.random(in: 0..<$0) }) -> (
    name: String, weighted: WeightedCluster?
  ) {
    switch cluster {
    case .cluster(let name):
      return (name, nil)
    case .weighted(let clusters):
      let total = clusters.reduce(0) { $0 + $1.weight }
      guard total > 0 else { return (clusters[0].name, clusters[0]) }
      var point = random(total)
      for cluster in clusters {
        if point < cluster.weight { return (cluster.name, cluster) }
        point -= cluster.weight
      }
      return (clusters[clusters.count - 1].name, clusters[clusters.count - 1])
    }
  }
}

/// `redirect`: answer with a 3xx and a Location built from the request.
package struct RedirectAction: Sendable, Equatable {
  package enum PathRewrite: Sendable, Equatable {
    case none
    case path(String)
    case prefix(String)
  }

  package var host: String?
  package var port: Int?
  package var scheme: String?
  package var path: PathRewrite = .none
  package var stripQuery = false
  /// 301 (default), 302, 303, 307 or 308.
  package var status = 301

  package init() {}

  /// The Location for a request, given the route's matched prefix (for `prefix_rewrite`).
  package func location(
    for request: RouteRequest, matchedPrefix: String?
  ) -> String {
    let scheme = self.scheme ?? request.scheme
    var authority = host ?? request.authority
    if let port {
      authority = HostPort.stripPort(authority) + ":\(port)"
    } else if self.scheme != nil, let current = HostPort.port(authority), current == 80 || current == 443 {
      // A scheme change drops a default port, as Envoy does.
      authority = HostPort.stripPort(authority)
    }
    var target = request.path
    var query = ""
    if let q = target.firstIndex(of: "?") {
      query = String(target[q...])
      target = String(target[..<q])
    }
    switch path {
    case .none: break
    case .path(let replacement):
      target = replacement
      if let q = replacement.firstIndex(of: "?") {
        target = String(replacement[..<q])
        query = String(replacement[q...])
      }
    case .prefix(let replacement):
      if let matchedPrefix, target.hasPrefix(matchedPrefix) {
        target = replacement + target.dropFirst(matchedPrefix.count)
      }
    }
    if stripQuery { query = "" }
    return "\(scheme)://\(authority)\(target)\(query)"
  }
}
