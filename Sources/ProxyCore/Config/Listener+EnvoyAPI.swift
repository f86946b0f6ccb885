package import EnvoyAPI
package import NIOCore
package import SwiftProtobuf

extension Listener {
  /// Validates a listener resource and builds its filter chains. Errors carry the field path inside the
  /// listener; Istio-only filters are skipped and reported in `warnings`.
  package init(
    _ proto: Envoy_Config_Listener_V3_Listener, filters: NetworkFilterRegistry, context: FilterBuildContext,
    warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    guard !proto.name.isEmpty else { throw ProxyConfigError("name", "listener has no name") }
    let address = try SocketAddress(listenerAddress: proto.hasAddress ? proto.address : nil, path: "address")
    self.init(name: proto.name, address: address)
    if !proto.statPrefix.isEmpty { statPrefix = proto.statPrefix }
    if proto.hasBindToPort { bindToPort = proto.bindToPort.value }
    if case .socketAddress(let socket)? = proto.address.address { ipv4Compatible = socket.ipv4Compat }
    if proto.hasUseOriginalDst { useOriginalDestination = proto.useOriginalDst.value }
    if proto.hasTransparent { transparent = proto.transparent.value }
    switch proto.trafficDirection {
    case .inbound: trafficDirection = .inbound
    case .outbound: trafficDirection = .outbound
    default: trafficDirection = .unspecified
    }
    if proto.hasPerConnectionBufferLimitBytes {
      perConnectionBufferLimitBytes = Int(proto.perConnectionBufferLimitBytes.value)
    }
    if proto.hasTcpBacklogSize { backlog = Int(proto.tcpBacklogSize.value) }
    if proto.hasEnableReusePort { reusePort = proto.enableReusePort.value }
    if proto.hasListenerFiltersTimeout {
      let timeout = try DurationConversion.timeAmount(
        proto.listenerFiltersTimeout, path: "listener_filters_timeout")
      listenerFiltersTimeout = timeout == .zero ? nil : timeout
    }
    continueOnListenerFiltersTimeout = proto.continueOnListenerFiltersTimeout
    ignoresGlobalConnectionLimit = proto.ignoreGlobalConnLimit
    if case .internalListener? = proto.listenerSpecifier {
      throw ProxyConfigError("internal_listener", "internal listeners are not supported")
    }
    for (i, filter) in proto.listenerFilters.enumerated() {
      if let converted = try ListenerFilter(filter, path: "listener_filters[\(i)]", warnings: &warnings) {
        listenerFilters.append(converted)
      }
    }
    for (i, log) in proto.accessLog.enumerated() {
      // Validated like a filter's access log; the lines (connections no filter chain took) come later.
      let config = try AccessLogConfig(log, path: "access_log[\(i)]", warnings: &warnings)
      try AccessLogFormat.validate(config, path: "access_log[\(i)]")
      warnings.append(
        ProxyConfigWarning(
          "access_log[\(i)]", "listener access logs (connections no filter chain takes) are not written yet"))
    }
    for (i, chain) in proto.filterChains.enumerated() {
      let path = "filter_chains[\(i)]"
      let converted = try FilterChain(
        chain, index: i, path: path, filters: filters, context: context, warnings: &warnings)
      // Names need not be unique: istiod gives several chains one name (`virtualInbound`), and Envoy takes it.
      if let clash = filterChains.firstIndex(where: { $0.match == converted.match }) {
        throw ProxyConfigError(
          path + ".filter_chain_match",
          "same match as filter_chains[\(clash)] (Envoy rejects duplicate matchers)")
      }
      filterChains.append(converted)
    }
    if proto.hasDefaultFilterChain {
      defaultFilterChain = try FilterChain(
        proto.defaultFilterChain, index: -1, path: "default_filter_chain", filters: filters, context: context,
        warnings: &warnings)
    }
    if filterChains.isEmpty && defaultFilterChain == nil {
      throw ProxyConfigError(
        "filter_chains", "listener needs at least one filter chain or a default_filter_chain")
    }
    var rest = proto
    rest.filterChains = []
    rest.clearDefaultFilterChain()
    configKey = rest.deterministicBytes
  }
}

extension SwiftProtobuf.Message {
  /// The message in a canonical form, for comparing configs: JSON with map keys sorted, nested `Any`s
  /// included (their bytes may come from an encoder that orders maps arbitrarily), or — for a message
  /// holding an `Any` of a type this proxy does not know — its binary form with sorted map entries.
  package var deterministicBytes: [UInt8] {
    var json = JSONEncodingOptions()
    json.useDeterministicOrdering = true
    if let bytes: [UInt8] = try? jsonUTF8Bytes(options: json) { return bytes }
    var binary = BinaryEncodingOptions()
    binary.useDeterministicOrdering = true
    return (try? serializedBytes(options: binary)) ?? []
  }
}

extension SocketAddress {
  /// A listener or source address: an IP literal and a port.
  package init(listenerAddress address: Envoy_Config_Core_V3_Address?, path: String) throws(ProxyConfigError)
  {
    switch address?.address {
    case .socketAddress(let socket)?:
      self = try SocketAddress(socket, path: path + ".socket_address")
    case .pipe?:
      throw ProxyConfigError(path + ".pipe", "pipe (Unix socket) listeners are not supported")
    case .envoyInternalAddress?:
      throw ProxyConfigError(path + ".envoy_internal_address", "internal addresses are not supported")
    case nil:
      throw ProxyConfigError(path, "needs a socket_address")
    }
  }

  package init(_ socket: Envoy_Config_Core_V3_SocketAddress, path: String) throws(ProxyConfigError) {
    guard socket.protocol == .tcp else { throw ProxyConfigError(path + ".protocol", "only TCP is supported") }
    guard case .portValue(let port)? = socket.portSpecifier else {
      if case .namedPort? = socket.portSpecifier {
        throw ProxyConfigError(path + ".named_port", "named ports are not supported; use port_value")
      }
      throw ProxyConfigError(path + ".port_value", "missing port_value")
    }
    guard port <= 65535 else { throw ProxyConfigError(path + ".port_value", "\(port) is not a port number") }
    do {
      self = try SocketAddress(ipAddress: socket.address, port: Int(port))
    } catch {
      throw ProxyConfigError(path + ".address", "\"\(socket.address)\" is not an IP address")
    }
  }
}

extension ListenerFilter {
  private static let originalSourceType = "envoy.extensions.filters.listener.original_src.v3.OriginalSrc"

  /// Nil for filters that are accepted and skipped (original_src, Istio's own).
  init?(
    _ proto: Envoy_Config_Listener_V3_ListenerFilter, path: String, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    var typeName: String
    switch proto.configType {
    case .typedConfig(let any)?:
      typeName = ExtensionTypes.messageName(ExtensionTypes.effectiveTypeURL(any))
    case nil:
      typeName = ""
    }
    if typeName.isEmpty {
      switch proto.name {
      case "envoy.filters.listener.original_dst", "envoy.listener.original_dst":
        typeName = Envoy_Extensions_Filters_Listener_OriginalDst_V3_OriginalDst.protoMessageName
      case "envoy.filters.listener.tls_inspector", "envoy.listener.tls_inspector":
        typeName = Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector.protoMessageName
      case "envoy.filters.listener.http_inspector", "envoy.listener.http_inspector":
        typeName = Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector.protoMessageName
      default:
        throw ProxyConfigError(path, "listener filter \"\(proto.name)\" needs a typed_config")
      }
    }
    let kind: Kind
    switch typeName {
    case Envoy_Extensions_Filters_Listener_OriginalDst_V3_OriginalDst.protoMessageName:
      kind = .originalDestination
    case Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector.protoMessageName:
      kind = .tlsInspector
    case Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector.protoMessageName:
      kind = .httpInspector
    case Self.originalSourceType:
      warnings.append(
        ProxyConfigWarning(
          path, "original_src listener filter accepted but not applied (source address not preserved)"))
      return nil
    default:
      if ExtensionTypes.isIstioExtension(typeName) {
        warnings.append(ProxyConfigWarning(path, "Istio listener filter \(typeName) accepted and skipped"))
        return nil
      }
      throw ProxyConfigError(path + ".typed_config", "unsupported listener filter type \"\(typeName)\"")
    }
    var disabled: ListenerFilterPredicate?
    if proto.hasFilterDisabled {
      disabled = try ListenerFilterPredicate(proto.filterDisabled, path: path + ".filter_disabled")
    }
    self.init(kind, disabled: disabled)
  }
}

extension ListenerFilterPredicate {
  init(_ proto: Envoy_Config_Listener_V3_ListenerFilterChainMatchPredicate, path: String)
    throws(ProxyConfigError)
  {
    switch proto.rule {
    case .anyMatch(let value)?:
      guard value else { throw ProxyConfigError(path + ".any_match", "must be true") }
      self = .any
    case .orMatch(let set)?:
      var rules: [ListenerFilterPredicate] = []
      for (i, rule) in set.rules.enumerated() {
        rules.append(try .init(rule, path: "\(path).or_match.rules[\(i)]"))
      }
      guard rules.count >= 2 else {
        throw ProxyConfigError(path + ".or_match.rules", "needs at least 2 rules")
      }
      self = .or(rules)
    case .andMatch(let set)?:
      var rules: [ListenerFilterPredicate] = []
      for (i, rule) in set.rules.enumerated() {
        rules.append(try .init(rule, path: "\(path).and_match.rules[\(i)]"))
      }
      guard rules.count >= 2 else {
        throw ProxyConfigError(path + ".and_match.rules", "needs at least 2 rules")
      }
      self = .and(rules)
    case .notMatch(let inner)?:
      self = .not(try .init(inner, path: path + ".not_match"))
    case .destinationPortRange(let range)?:
      guard range.start < range.end else {
        throw ProxyConfigError(
          path + ".destination_port_range", "start \(range.start) must be below end \(range.end)")
      }
      self = .destinationPortRange(Int(range.start)..<Int(range.end))
    case nil:
      throw ProxyConfigError(path, "predicate has no rule")
    }
  }
}

extension FilterChain {
  init(
    _ proto: Envoy_Config_Listener_V3_FilterChain, index: Int, path: String,
    filters registry: NetworkFilterRegistry,
    context: FilterBuildContext, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    var terminatesTLS = false
    if proto.hasTransportSocket, !proto.transportSocket.name.hasSuffix("raw_buffer") {
      let typeURL: String =
        if case .typedConfig(let any)? = proto.transportSocket.configType { any.typeURL } else { "" }
      if typeURL.hasSuffix("DownstreamTlsContext")
        || proto.transportSocket.name == "envoy.transport_sockets.tls"
      {
        // Accepted so that a push with TLS chains (istiod's 15006) loads; until TLS termination exists the
        // chain's connections are closed.
        terminatesTLS = true
        warnings.append(
          ProxyConfigWarning(
            path + ".transport_socket",
            "TLS termination is not implemented yet: connections that select this filter chain are closed"))
      } else if !typeURL.hasSuffix("RawBuffer") {
        throw ProxyConfigError(
          path + ".transport_socket",
          "transport socket \"\(proto.transportSocket.name)\" is not supported")
      }
    }
    var terminal: (any TerminalNetworkFilter)?
    var skipped: [String] = []
    for (k, filter) in proto.filters.enumerated() {
      let filterPath = "\(path).filters[\(k)]"
      if terminal != nil {
        throw ProxyConfigError(
          filterPath, "filter \"\(filter.name)\" follows the terminal filter \(terminal!.filterName)")
      }
      var typeURL = ""
      var config = Google_Protobuf_Any()
      if case .typedConfig(let any)? = filter.configType {
        config = any
        typeURL = ExtensionTypes.effectiveTypeURL(any)
      } else if let typeName = registry.typeName(forFilterName: filter.name) {
        typeURL = "type.googleapis.com/" + typeName
      }
      if typeURL.isEmpty && filter.name.hasPrefix("istio.") || ExtensionTypes.isIstioExtension(typeURL) {
        let name = typeURL.isEmpty ? filter.name : ExtensionTypes.messageName(typeURL)
        warnings.append(ProxyConfigWarning(filterPath, "Istio filter \(name) accepted and skipped"))
        skipped.append(filter.name)
        continue
      }
      guard let builder = registry.builder(forTypeURL: typeURL) else {
        if typeURL.isEmpty {
          throw ProxyConfigError(filterPath, "filter \"\(filter.name)\" needs a typed_config")
        }
        throw ProxyConfigError(filterPath + ".typed_config", "unsupported network filter type \"\(typeURL)\"")
      }
      if ExtensionTypes.isTypedStruct(config.typeURL) {
        throw ProxyConfigError(
          filterPath + ".typed_config",
          "a TypedStruct wrapping \(ExtensionTypes.messageName(typeURL)) is not supported; use its own type")
      }
      do {
        _ = context.warnings.take()
        terminal = try builder(config, context)
        warnings += context.warnings.take().map {
          ProxyConfigWarning(
            $0.path.isEmpty ? filterPath + ".typed_config" : "\(filterPath).typed_config.\($0.path)",
            $0.message)
        }
      } catch {
        throw error.prefixed(filterPath + ".typed_config")
      }
    }
    guard let terminal else {
      throw ProxyConfigError(
        path + ".filters", "needs a terminal filter (tcp_proxy or http_connection_manager)")
    }
    let name =
      proto.name.isEmpty ? (index >= 0 ? "filter_chains[\(index)]" : "default_filter_chain") : proto.name
    self.init(name: name, terminal: terminal)
    skippedFilters = skipped
    self.terminatesTLS = terminatesTLS
    configKey = proto.deterministicBytes
    if proto.hasFilterChainMatch {
      match = try FilterChainMatch(proto.filterChainMatch, path: path + ".filter_chain_match")
    }
  }
}

extension FilterChainMatch {
  init(_ proto: Envoy_Config_Listener_V3_FilterChainMatch, path: String) throws(ProxyConfigError) {
    self.init()
    if proto.hasDestinationPort {
      guard (1...65535).contains(proto.destinationPort.value) else {
        throw ProxyConfigError(
          path + ".destination_port", "\(proto.destinationPort.value) is not a port number")
      }
      destinationPort = Int(proto.destinationPort.value)
    }
    prefixRanges = try Self.ranges(proto.prefixRanges, path: path + ".prefix_ranges")
    directSourcePrefixRanges = try Self.ranges(
      proto.directSourcePrefixRanges, path: path + ".direct_source_prefix_ranges")
    sourcePrefixRanges = try Self.ranges(proto.sourcePrefixRanges, path: path + ".source_prefix_ranges")
    sourcePorts = proto.sourcePorts.map(Int.init)
    serverNames = proto.serverNames
    for (i, name) in serverNames.enumerated()
    where name.contains("*") && !(name.hasPrefix("*.") && name.dropFirst(2).allSatisfy { $0 != "*" }) {
      throw ProxyConfigError(
        "\(path).server_names[\(i)]", "\"\(name)\": only a leading \"*.\" wildcard is allowed")
    }
    transportProtocol = proto.transportProtocol
    applicationProtocols = proto.applicationProtocols
    switch proto.sourceType {
    case .sameIpOrLoopback: sourceType = .sameIPOrLoopback
    case .external: sourceType = .external
    default: sourceType = .any
    }
    if !proto.addressSuffix.isEmpty || proto.hasSuffixLen {
      throw ProxyConfigError(path + ".address_suffix", "address_suffix/suffix_len are not supported")
    }
  }

  private static func ranges(_ ranges: [Envoy_Config_Core_V3_CidrRange], path: String)
    throws(ProxyConfigError) -> [CIDRRange]
  {
    var out: [CIDRRange] = []
    for (i, range) in ranges.enumerated() {
      do {
        out.append(
          try CIDRRange(
            addressPrefix: range.addressPrefix,
            prefixLength: range.hasPrefixLen ? Int(range.prefixLen.value) : nil))
      } catch {
        throw error.prefixed("\(path)[\(i)]")
      }
    }
    return out
  }
}
