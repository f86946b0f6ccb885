package import EnvoyAPI
package import ProxyCore
internal import SwiftProtobuf

/// Collects "accepted but not implemented" notes once per field, so a route table with a thousand
/// routes that all carry a retry policy yields one warning, naming the first place it was seen.
package struct UnsupportedFieldNotes: Sendable {
  private var seen: Set<String> = []
  package private(set) var warnings: [ProxyConfigWarning] = []

  package init() {}

  package mutating func note(_ field: String, at path: String, _ message: String) {
    guard seen.insert(field).inserted else { return }
    warnings.append(ProxyConfigWarning(path, message))
  }
}

extension RouteConfiguration {
  /// Validates an inline or RDS route configuration.
  package init(
    _ proto: Envoy_Config_Route_V3_RouteConfiguration, notes: inout UnsupportedFieldNotes
  ) throws(ProxyConfigError) {
    var hosts: [VirtualHost] = []
    for (i, vhost) in proto.virtualHosts.enumerated() {
      hosts.append(try VirtualHost(vhost, path: "virtual_hosts[\(i)]", notes: &notes))
    }
    try self.init(name: proto.name, virtualHosts: hosts)
    ignorePortInHostMatching = proto.ignorePortInHostMatching
    headers = try HeaderMutations(
      requestToAdd: proto.requestHeadersToAdd, requestToRemove: proto.requestHeadersToRemove,
      responseToAdd: proto.responseHeadersToAdd, responseToRemove: proto.responseHeadersToRemove, path: "",
      notes: &notes)
    if proto.hasVhds { throw ProxyConfigError("vhds", "VHDS is not supported") }
    if !proto.internalOnlyHeaders.isEmpty {
      notes.note(
        "internal_only_headers", at: "internal_only_headers", "internal_only_headers is not enforced yet")
    }
    if !proto.requestMirrorPolicies.isEmpty {
      notes.note(
        "request_mirror_policies", at: "request_mirror_policies", "request mirroring is not implemented")
    }
    if !proto.vhostHeader.isEmpty {
      throw ProxyConfigError("vhost_header", "vhost_header is not supported")
    }
  }
}

extension VirtualHost {
  convenience init(
    _ proto: Envoy_Config_Route_V3_VirtualHost, path: String, notes: inout UnsupportedFieldNotes
  ) throws(ProxyConfigError) {
    guard !proto.name.isEmpty else { throw ProxyConfigError(path + ".name", "must not be empty") }
    guard !proto.domains.isEmpty else {
      throw ProxyConfigError(path + ".domains", "needs at least one domain")
    }
    for (d, domain) in proto.domains.enumerated() {
      let stars = domain.filter { $0 == "*" }.count
      let valid =
        !domain.isEmpty
        && (stars == 0 || domain == "*" || (stars == 1 && (domain.hasPrefix("*") || domain.hasSuffix("*"))))
      if !valid {
        throw ProxyConfigError(
          "\(path).domains[\(d)]",
          "\"\(domain)\": a wildcard is allowed only as \"*\", a leading \"*\" or a trailing \"*\"")
      }
    }
    var routes: [Route] = []
    for (r, route) in proto.routes.enumerated() {
      routes.append(try Route(route, path: "\(path).routes[\(r)]", notes: &notes))
    }
    let headers = try HeaderMutations(
      requestToAdd: proto.requestHeadersToAdd, requestToRemove: proto.requestHeadersToRemove,
      responseToAdd: proto.responseHeadersToAdd, responseToRemove: proto.responseHeadersToRemove, path: path,
      notes: &notes)
    self.init(name: proto.name, domains: proto.domains, routes: routes, headers: headers)
    if proto.requireTls != .none {
      throw ProxyConfigError(path + ".require_tls", "require_tls is not supported yet")
    }
    if proto.hasRetryPolicy {
      notes.note(
        "retry_policy", at: path + ".retry_policy",
        "retry policies are not implemented yet; requests are tried once")
    }
    if proto.hasCors { notes.note("cors", at: path + ".cors", "CORS policies are not applied yet") }
    if !proto.typedPerFilterConfig.isEmpty {
      notes.note(
        "typed_per_filter_config", at: path + ".typed_per_filter_config",
        "per-route HTTP filter config is ignored (\(proto.typedPerFilterConfig.keys.sorted().joined(separator: ", ")))"
      )
    }
  }
}

extension Route {
  convenience init(_ proto: Envoy_Config_Route_V3_Route, path: String, notes: inout UnsupportedFieldNotes)
    throws(ProxyConfigError)
  {
    guard proto.hasMatch else { throw ProxyConfigError(path + ".match", "is required") }
    let match = try RouteMatch(proto.match, path: path + ".match")
    let action: RouteAction
    switch proto.action {
    case .route(let route)?:
      action = .forward(try ForwardAction(route, path: path + ".route", notes: &notes))
    case .directResponse(let direct)?:
      let status = Int(direct.status)
      guard (200...599).contains(status) else {
        throw ProxyConfigError(path + ".direct_response.status", "\(status) is not in [200, 599]")
      }
      var body = ""
      if direct.hasBody {
        switch direct.body.specifier {
        case .inlineString(let s)?: body = s
        case .inlineBytes(let b)?: body = String(decoding: b, as: UTF8.self)
        case .filename?:
          throw ProxyConfigError(
            path + ".direct_response.body.filename", "bodies from files are not supported")
        default:
          throw ProxyConfigError(
            path + ".direct_response.body", "only inline_string and inline_bytes are supported")
        }
      }
      if direct.hasBodyFormat {
        throw ProxyConfigError(path + ".direct_response.body_format", "body_format is not supported")
      }
      action = .directResponse(status: status, body: body)
    case .redirect(let redirect)?:
      action = .redirect(try RedirectAction(redirect, path: path + ".redirect"))
    case .nonForwardingAction?:
      throw ProxyConfigError(path + ".non_forwarding_action", "non_forwarding_action is not supported")
    case nil:
      throw ProxyConfigError(path, "needs route, redirect or direct_response")
    }
    let headers = try HeaderMutations(
      requestToAdd: proto.requestHeadersToAdd, requestToRemove: proto.requestHeadersToRemove,
      responseToAdd: proto.responseHeadersToAdd, responseToRemove: proto.responseHeadersToRemove, path: path,
      notes: &notes)
    self.init(name: proto.name, match: match, action: action, headers: headers)
    if !proto.typedPerFilterConfig.isEmpty {
      notes.note(
        "typed_per_filter_config", at: path + ".typed_per_filter_config",
        "per-route HTTP filter config is ignored (\(proto.typedPerFilterConfig.keys.sorted().joined(separator: ", ")))"
      )
    }
  }
}

extension RouteMatch {
  init(_ proto: Envoy_Config_Route_V3_RouteMatch, path: String) throws(ProxyConfigError) {
    let specifier: PathSpecifier
    switch proto.pathSpecifier {
    case .prefix(let prefix)?: specifier = .prefix(prefix)
    case .path(let exact)?: specifier = .path(exact)
    case .safeRegex(let regex)?:
      do {
        specifier = .safeRegex(try StringMatcher(.safeRegex(regex.regex)))
      } catch {
        throw ProxyConfigError(path + ".safe_regex", error.description)
      }
    case .pathSeparatedPrefix?:
      throw ProxyConfigError(path + ".path_separated_prefix", "path_separated_prefix is not supported yet")
    case .connectMatcher?:
      throw ProxyConfigError(path + ".connect_matcher", "CONNECT routes are not supported")
    case .pathMatchPolicy?:
      throw ProxyConfigError(path + ".path_match_policy", "path_match_policy is not supported")
    case nil:
      throw ProxyConfigError(path, "needs prefix, path or safe_regex")
    }
    var headers: [HeaderMatcher] = []
    for (h, header) in proto.headers.enumerated() {
      headers.append(try HeaderMatcher(header, path: "\(path).headers[\(h)]"))
    }
    self.init(
      path: specifier, caseSensitive: proto.hasCaseSensitive ? proto.caseSensitive.value : true,
      headers: headers)
    if !proto.queryParameters.isEmpty {
      throw ProxyConfigError(path + ".query_parameters", "query parameter matching is not supported yet")
    }
    if proto.hasGrpc { throw ProxyConfigError(path + ".grpc", "gRPC route matching is not supported yet") }
    if proto.hasRuntimeFraction {
      throw ProxyConfigError(path + ".runtime_fraction", "runtime_fraction is not supported")
    }
    if proto.hasTlsContext {
      throw ProxyConfigError(path + ".tls_context", "tls_context matching is not supported")
    }
  }
}

extension HeaderMatcher {
  init(_ proto: Envoy_Config_Route_V3_HeaderMatcher, path: String) throws(ProxyConfigError) {
    guard !proto.name.isEmpty else { throw ProxyConfigError(path + ".name", "must not be empty") }
    func matcher(_ pattern: StringMatcher.Pattern, ignoreCase: Bool = false, field: String)
      throws(ProxyConfigError)
      -> Kind
    {
      do {
        return .string(try StringMatcher(pattern, ignoreCase: ignoreCase))
      } catch {
        throw ProxyConfigError("\(path).\(field)", error.description)
      }
    }
    let kind: Kind
    switch proto.headerMatchSpecifier {
    case .exactMatch(let s)?: kind = try matcher(.exact(s), field: "exact_match")
    case .prefixMatch(let s)?: kind = try matcher(.prefix(s), field: "prefix_match")
    case .suffixMatch(let s)?: kind = try matcher(.suffix(s), field: "suffix_match")
    case .containsMatch(let s)?: kind = try matcher(.contains(s), field: "contains_match")
    case .safeRegexMatch(let regex)?: kind = try matcher(.safeRegex(regex.regex), field: "safe_regex_match")
    case .presentMatch(let present)?: kind = .present(present)
    case .stringMatch(let string)?:
      kind = .string(try StringMatcher(proto: string, path: path + ".string_match"))
    case .rangeMatch?:
      throw ProxyConfigError(path + ".range_match", "range_match is not supported yet")
    case nil:
      // No specifier: the header must be present (Envoy's behaviour).
      kind = .present(true)
    }
    self.init(name: proto.name, kind: kind, invert: proto.invertMatch)
    treatMissingAsEmpty = proto.treatMissingHeaderAsEmpty
  }
}

extension ForwardAction {
  init(_ proto: Envoy_Config_Route_V3_RouteAction, path: String, notes: inout UnsupportedFieldNotes)
    throws(ProxyConfigError)
  {
    switch proto.clusterSpecifier {
    case .cluster(let name)?:
      guard !name.isEmpty else { throw ProxyConfigError(path + ".cluster", "must not be empty") }
      self.init(cluster: .cluster(name))
    case .weightedClusters(let weighted)?:
      guard !weighted.clusters.isEmpty else {
        throw ProxyConfigError(path + ".weighted_clusters.clusters", "needs at least one cluster")
      }
      var clusters: [WeightedCluster] = []
      for (i, cluster) in weighted.clusters.enumerated() {
        let cpath = "\(path).weighted_clusters.clusters[\(i)]"
        guard !cluster.name.isEmpty else {
          if !cluster.clusterHeader.isEmpty {
            throw ProxyConfigError(cpath + ".cluster_header", "cluster_header is not supported")
          }
          throw ProxyConfigError(cpath + ".name", "must not be empty")
        }
        var entry = WeightedCluster(
          name: cluster.name, weight: cluster.hasWeight ? Int(cluster.weight.value) : 0)
        entry.headers = try HeaderMutations(
          requestToAdd: cluster.requestHeadersToAdd, requestToRemove: cluster.requestHeadersToRemove,
          responseToAdd: cluster.responseHeadersToAdd, responseToRemove: cluster.responseHeadersToRemove,
          path: cpath,
          notes: &notes)
        if case .hostRewriteLiteral(let host)? = cluster.hostRewriteSpecifier, !host.isEmpty {
          entry.hostRewrite = host
        }
        clusters.append(entry)
      }
      guard clusters.contains(where: { $0.weight > 0 }) else {
        throw ProxyConfigError(
          path + ".weighted_clusters.clusters", "the sum of the weights must be greater than 0")
      }
      if weighted.hasTotalWeight,
        UInt32(exactly: clusters.reduce(0) { $0 + $1.weight }) != weighted.totalWeight.value
      {
        throw ProxyConfigError(
          path + ".weighted_clusters.total_weight", "does not equal the sum of the weights")
      }
      if weighted.randomValueSpecifier != nil {
        throw ProxyConfigError(path + ".weighted_clusters", "header_name/use_hash_policy are not supported")
      }
      self.init(cluster: .weighted(clusters))
    case .clusterHeader?:
      throw ProxyConfigError(path + ".cluster_header", "cluster_header is not supported yet")
    case .clusterSpecifierPlugin?:
      throw ProxyConfigError(path + ".cluster_specifier_plugin", "cluster_specifier_plugin is not supported")
    case nil:
      throw ProxyConfigError(path, "needs cluster or weighted_clusters")
    }
    if !proto.prefixRewrite.isEmpty { prefixRewrite = proto.prefixRewrite }
    if proto.hasRegexRewrite {
      throw ProxyConfigError(path + ".regex_rewrite", "regex_rewrite is not supported yet")
    }
    switch proto.hostRewriteSpecifier {
    case .hostRewriteLiteral(let host)?:
      if !host.isEmpty {
        guard HTTP1HeadWriter.isValidField(name: "host", value: host) else {
          throw ProxyConfigError(path + ".host_rewrite_literal", "\"\(host)\" is not a valid Host value")
        }
        hostRewrite = host
      }
    case .autoHostRewrite(let on)?:
      if on.value {
        notes.note(
          "auto_host_rewrite", at: path + ".auto_host_rewrite",
          "auto_host_rewrite is not implemented; Host is kept")
      }
    case nil:
      break
    default:
      throw ProxyConfigError(path, "only host_rewrite_literal and auto_host_rewrite are supported")
    }
    if proto.hasTimeout {
      let value = try DurationConversion.timeAmount(proto.timeout, path: path + ".timeout")
      timeout = value == .zero ? nil : value
    }
    switch proto.clusterNotFoundResponseCode {
    case .notFound: clusterNotFoundStatus = 404
    case .internalServerError: clusterNotFoundStatus = 500
    default: clusterNotFoundStatus = 503
    }
    for (u, upgrade) in proto.upgradeConfigs.enumerated() {
      if upgrade.hasConnectConfig {
        throw ProxyConfigError("\(path).upgrade_configs[\(u)].connect_config", "CONNECT is not supported")
      }
      upgrades[upgrade.upgradeType.lowercased()] = upgrade.hasEnabled ? upgrade.enabled.value : true
    }
    if proto.hasRetryPolicy || proto.hasRetryPolicyTypedConfig {
      notes.note(
        "retry_policy", at: path + ".retry_policy",
        "retry policies are not implemented yet; requests are tried once")
    }
    if !proto.hashPolicy.isEmpty {
      notes.note(
        "hash_policy", at: path + ".hash_policy", "hash policies are ignored (no ring-hash/maglev yet)")
    }
    if !proto.requestMirrorPolicies.isEmpty {
      notes.note(
        "request_mirror_policies", at: path + ".request_mirror_policies",
        "request mirroring is not implemented")
    }
    if proto.hasMaxStreamDuration {
      let d = proto.maxStreamDuration
      if (d.hasMaxStreamDuration && (d.maxStreamDuration.seconds != 0 || d.maxStreamDuration.nanos != 0))
        || (d.hasGrpcTimeoutHeaderMax
          && (d.grpcTimeoutHeaderMax.seconds != 0 || d.grpcTimeoutHeaderMax.nanos != 0))
      {
        notes.note(
          "max_stream_duration", at: path + ".max_stream_duration", "max_stream_duration is not enforced yet")
      }
    }
    if proto.hasIdleTimeout {
      notes.note(
        "route.idle_timeout", at: path + ".idle_timeout", "per-route idle_timeout is not enforced yet")
    }
    if proto.hasHedgePolicy {
      notes.note("hedge_policy", at: path + ".hedge_policy", "hedging is not implemented")
    }
  }
}

extension RedirectAction {
  init(_ proto: Envoy_Config_Route_V3_RedirectAction, path: String) throws(ProxyConfigError) {
    self.init()
    if !proto.hostRedirect.isEmpty { host = proto.hostRedirect }
    if proto.portRedirect != 0 {
      guard proto.portRedirect <= 65535 else { throw ProxyConfigError(path + ".port_redirect", "not a port") }
      port = Int(proto.portRedirect)
    }
    switch proto.schemeRewriteSpecifier {
    case .httpsRedirect(let on)?: if on { scheme = "https" }
    case .schemeRedirect(let s)?: if !s.isEmpty { scheme = s.lowercased() }
    case nil: break
    }
    switch proto.pathRewriteSpecifier {
    case .pathRedirect(let p)?: self.path = .path(p)
    case .prefixRewrite(let p)?: self.path = .prefix(p)
    case .regexRewrite?: throw ProxyConfigError(path + ".regex_rewrite", "regex_rewrite is not supported yet")
    case nil: break
    }
    stripQuery = proto.stripQuery
    switch proto.responseCode {
    case .movedPermanently: status = 301
    case .found: status = 302
    case .seeOther: status = 303
    case .temporaryRedirect: status = 307
    case .permanentRedirect: status = 308
    case .UNRECOGNIZED(let n): throw ProxyConfigError(path + ".response_code", "unknown response code \(n)")
    }
  }
}

extension HeaderMutations {
  init(
    requestToAdd: [Envoy_Config_Core_V3_HeaderValueOption], requestToRemove: [String],
    responseToAdd: [Envoy_Config_Core_V3_HeaderValueOption], responseToRemove: [String], path: String,
    notes: inout UnsupportedFieldNotes
  ) throws(ProxyConfigError) {
    self.init()
    let prefix = path.isEmpty ? "" : path + "."
    self.requestToAdd = try Self.additions(
      requestToAdd, path: prefix + "request_headers_to_add", notes: &notes)
    self.responseToAdd = try Self.additions(
      responseToAdd, path: prefix + "response_headers_to_add", notes: &notes)
    self.requestToRemove = try Self.removals(requestToRemove, path: prefix + "request_headers_to_remove")
    self.responseToRemove = try Self.removals(responseToRemove, path: prefix + "response_headers_to_remove")
  }

  private static func additions(
    _ options: [Envoy_Config_Core_V3_HeaderValueOption], path: String, notes: inout UnsupportedFieldNotes
  ) throws(ProxyConfigError) -> [Addition] {
    var out: [Addition] = []
    for (i, option) in options.enumerated() {
      let ipath = "\(path)[\(i)]"
      let key = option.header.key
      let value =
        option.header.value.isEmpty
        ? String(decoding: option.header.rawValue, as: UTF8.self) : option.header.value
      guard !key.isEmpty, !key.hasPrefix(":"), key.lowercased() != "host" else {
        throw ProxyConfigError(
          ipath + ".header.key", "\"\(key)\" cannot be added (empty, pseudo-header or host)")
      }
      guard HTTP1HeadWriter.isValidField(name: key, value: value) || value.isEmpty else {
        throw ProxyConfigError(ipath + ".header", "\"\(key): \(value)\" is not a valid header line")
      }
      if value.contains("%") {
        notes.note(
          "header_formatters", at: ipath + ".header.value",
          "command operators in header values are not expanded yet; the value is sent as written")
      }
      var action: AppendAction
      switch option.appendAction {
      case .appendIfExistsOrAdd: action = .append
      case .addIfAbsent: action = .addIfAbsent
      case .overwriteIfExistsOrAdd: action = .overwrite
      case .overwriteIfExists: action = .overwriteIfExists
      case .UNRECOGNIZED(let n): throw ProxyConfigError(ipath + ".append_action", "unknown action \(n)")
      }
      if option.hasAppend {
        guard option.appendAction == .appendIfExistsOrAdd else {
          throw ProxyConfigError(ipath, "append and append_action are mutually exclusive")
        }
        action = option.append.value ? .append : .overwrite
      }
      var addition = Addition(name: key, value: value, action: action)
      addition.keepEmptyValue = option.keepEmptyValue
      out.append(addition)
    }
    return out
  }

  private static func removals(_ names: [String], path: String) throws(ProxyConfigError) -> [String] {
    var out: [String] = []
    for (i, name) in names.enumerated() {
      let lower = name.lowercased()
      guard !lower.isEmpty, !lower.hasPrefix(":"), lower != "host" else {
        throw ProxyConfigError("\(path)[\(i)]", "\"\(name)\" cannot be removed")
      }
      out.append(lower)
    }
    return out
  }
}
