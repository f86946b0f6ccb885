internal import Glibc

/// Which backend `--backend` asks for.
package enum BackendChoice: String, Sendable, Hashable, CaseIterable {
  case auto
  case nftables
  case iptablesLegacy = "iptables-legacy"
  case iptablesNft = "iptables-nft"
}

/// Everything `pilotfish istio-iptables` was asked to do, validated: the rule configuration plus how to run.
package struct CaptureSettings: Sendable {
  package var config = CaptureConfig()
  package var backend: BackendChoice = .auto
  package var dryRun = false
  package var skipRuleApply = false
  package var runValidation = false
  package var cleanupOnly = false
  package var forceApply = false
  package var probePort: UInt16 = 15002
  package var probeTimeout: Duration = .seconds(5)
  package var networkNamespace: String?
  /// Notices for the operator produced while resolving (e.g. IPv6 requested but disabled in the kernel).
  package var notices: [String] = []

  package init() {}

  /// Resolves flags (long name → value as given on the command line) and the environment into settings.
  /// Throws an `.invalidArgument` error naming the flag or variable and the value at the first bad input.
  package static func resolve(
    flags: [CaptureFlag: String], environment: [String: String], host: HostFacts
  ) throws(InterceptionError) -> CaptureSettings {
    var reader = Reader(flags: flags, environment: environment)
    var s = CaptureSettings()
    var c = CaptureConfig()

    c.proxyPort = try reader.port(.envoyPort) ?? 15001
    c.inboundCapturePort = try reader.port(.inboundCapturePort) ?? 15006
    c.inboundTunnelPort = try reader.port(.inboundTunnelPort) ?? 15008
    c.proxyUIDs = try reader.ids(.proxyUID) ?? [Self.defaultProxyUID(environment)]
    c.proxyGIDs = try reader.ids(.proxyGID) ?? c.proxyUIDs

    let mode = try reader.string(.interceptionMode) ?? ""
    switch mode.uppercased() {
    case "", "REDIRECT": c.inboundMode = .redirect
    case "TPROXY": c.inboundMode = .tproxy
    default:
      throw reader.invalid(.interceptionMode, mode, "unknown interception mode; use REDIRECT or TPROXY")
    }

    let inbound = try reader.string(.inboundPorts) ?? ""
    switch inbound.trimmingSpaces {
    case "": c.inboundPorts = .none
    case "*": c.inboundPorts = .all
    default: c.inboundPorts = .ports(try reader.portList(.inboundPorts, inbound))
    }
    c.inboundExcludePorts = try reader.portList(.localExcludePorts)
    c.excludeInterfaces = try reader.interfaces(.excludeInterfaces)
    c.kubeVirtInterfaces = try reader.interfaces(.kubeVirtInterfaces)

    let include = try reader.string(.serviceCIDR) ?? ""
    switch include.trimmingSpaces {
    case "": c.outboundRanges = .none
    case "*": c.outboundRanges = .all
    default: c.outboundRanges = .ranges(try reader.cidrList(.serviceCIDR, include))
    }
    let exclude = try reader.string(.serviceExcludeCIDR) ?? ""
    if exclude.trimmingSpaces == "*" {
      throw reader.invalid(
        .serviceExcludeCIDR, exclude, "'*' cannot be excluded; leave -i empty to capture nothing")
    }
    c.outboundExcludeRanges = try reader.cidrList(.serviceExcludeCIDR, exclude)
    c.outboundIncludePorts = try reader.portList(.outboundPorts)
    c.outboundExcludePorts = try reader.portList(.localOutboundPortsExclude)

    c.tproxyMark = try reader.number(.tproxyMark) ?? 1337
    if c.tproxyMark == 0 { throw reader.invalid(.tproxyMark, "0", "the mark must be non-zero") }
    c.tproxyRouteTable = try reader.number(.tproxyRouteTable) ?? 133
    if [0, 253, 254, 255].contains(c.tproxyRouteTable) {
      throw reader.invalid(
        .tproxyRouteTable, String(c.tproxyRouteTable),
        "tables 0, 253 (default), 254 (main) and 255 (local) are reserved")
    }

    c.redirectDNS = try reader.bool(.redirectDNS)
    c.captureAllDNS = try reader.bool(.captureAllDNS)
    c.dropInvalid = try reader.bool(.dropInvalid)

    let groups = try reader.string(.ownerGroups) ?? "*"
    let groupsExclude = try reader.string(.ownerGroupsExclude) ?? ""
    if groups.trimmingSpaces != "*" && !groups.trimmingSpaces.isEmpty {
      if !groupsExclude.trimmingSpaces.isEmpty {
        throw reader.invalid(
          .ownerGroupsExclude, groupsExclude,
          "only one of ISTIO_OUTBOUND_OWNER_GROUPS and *_EXCLUDE may be set")
      }
      c.ownerGroupsInclude = try reader.groups(.ownerGroups, groups)
    }
    c.ownerGroupsExclude = try reader.groups(.ownerGroupsExclude, groupsExclude)

    if let loopback = try reader.string(.ipv4LoopbackCIDR), !loopback.trimmingSpaces.isEmpty {
      guard let cidr = CIDR(loopback.trimmingSpaces), cidr.family == .v4, CIDR("127.0.0.0/8")!.contains(cidr)
      else {
        throw reader.invalid(.ipv4LoopbackCIDR, loopback, "must be an IPv4 range inside 127.0.0.0/8")
      }
      c.ipv4LoopbackRange = cidr
    }

    // Families: IPv6 when asked for (dual stack) or when the pod itself is IPv6, and only if the kernel has it.
    let dualStack = try reader.bool(.dualStack)
    let podIsIPv6 =
      environment["INSTANCE_IP"].flatMap(CIDR.init)?.family == .v6 || host.addresses.first?.family == .v6
    if dualStack || podIsIPv6 {
      if host.kernelIPv6 {
        c.families = [.v4, .v6]
      } else {
        s.notices.append("IPv6 is disabled in this kernel or namespace: installing IPv4 rules only")
      }
    }
    c.dnsServers = c.captureAllDNS ? [] : host.nameservers.filter { c.families.contains($0.family) }

    s.backend = .auto
    if try reader.bool(.nativeNftables) { s.backend = .nftables }
    if let backend = try reader.string(.backend), !backend.trimmingSpaces.isEmpty {
      guard let choice = BackendChoice(rawValue: backend.trimmingSpaces.lowercased()) else {
        throw reader.invalid(.backend, backend, "use auto, nftables, iptables-legacy or iptables-nft")
      }
      s.backend = choice
    }
    s.dryRun = try reader.bool(.dryRun)
    s.skipRuleApply = try reader.bool(.skipRuleApply)
    s.runValidation = try reader.bool(.runValidation)
    s.cleanupOnly = try reader.bool(.cleanupOnly)
    s.forceApply = try reader.bool(.forceApply)
    s.probePort = try reader.port(.probePort) ?? 15002
    s.probeTimeout = try reader.duration(.probeTimeout) ?? .seconds(5)
    s.networkNamespace = try reader.string(.networkNamespace).flatMap { $0.isEmpty ? nil : $0 }
    s.config = c
    return s
  }

  /// Istio's default: the uid of `$ENVOY_USER` (istio-proxy) if that user exists, else 1337.
  static func defaultProxyUID(_ environment: [String: String]) -> UInt32 {
    let user = environment["ENVOY_USER"] ?? "istio-proxy"
    if let entry = getpwnam(user) { return entry.pointee.pw_uid }
    return 1337
  }
}

/// Reads one input by precedence and parses it, naming the input in every error.
private struct Reader {
  var flags: [CaptureFlag: String]
  var environment: [String: String]
  /// Where each value came from, for error messages.
  var source: [CaptureFlag: String] = [:]

  init(flags: [CaptureFlag: String], environment: [String: String]) {
    self.flags = flags
    self.environment = environment
  }

  mutating func string(_ flag: CaptureFlag) throws(InterceptionError) -> String? {
    if let value = flags[flag] {
      source[flag] = flag.flagName
      return value
    }
    for name in flag.environment {
      if let value = environment[name] {
        source[flag] = "\(name) (environment, for --\(flag.rawValue))"
        return value
      }
    }
    return nil
  }

  func invalid(_ flag: CaptureFlag, _ value: String, _ reason: String) -> InterceptionError {
    InterceptionError(
      .invalidArgument, "invalid value \"\(value)\" for \(source[flag] ?? flag.flagName): \(reason)")
  }

  mutating func bool(_ flag: CaptureFlag) throws(InterceptionError) -> Bool {
    guard let value = try string(flag) else { return false }
    switch value.trimmingSpaces {
    case "1", "t", "T", "true", "TRUE", "True": return true
    case "0", "f", "F", "false", "FALSE", "False", "": return false
    default: throw invalid(flag, value, "expected true or false")
    }
  }

  mutating func port(_ flag: CaptureFlag) throws(InterceptionError) -> UInt16? {
    guard let value = try string(flag) else { return nil }
    guard let port = UInt16(value.trimmingSpaces), port > 0 else {
      throw invalid(flag, value, "not a port number (1-65535)")
    }
    return port
  }

  mutating func number(_ flag: CaptureFlag) throws(InterceptionError) -> UInt32? {
    guard let value = try string(flag) else { return nil }
    guard let number = UInt32(value.trimmingSpaces) else { throw invalid(flag, value, "not a whole number") }
    return number
  }

  mutating func ids(_ flag: CaptureFlag) throws(InterceptionError) -> [UInt32]? {
    guard let value = try string(flag), !value.trimmingSpaces.isEmpty else { return nil }
    var result: [UInt32] = []
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      guard let id = UInt32(item.trimmingSpaces) else {
        throw invalid(flag, value, "\"\(item)\" is not a numeric id")
      }
      if !result.contains(id) { result.append(id) }
    }
    return result
  }

  mutating func portList(_ flag: CaptureFlag) throws(InterceptionError) -> [UInt16] {
    let value = try string(flag) ?? ""
    return try portList(flag, value)
  }

  func portList(_ flag: CaptureFlag, _ value: String) throws(InterceptionError) -> [UInt16] {
    guard !value.trimmingSpaces.isEmpty else { return [] }
    var result: [UInt16] = []
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      guard let port = UInt16(item.trimmingSpaces), port > 0 else {
        throw invalid(flag, value, "\"\(item)\" is not a port number (1-65535)")
      }
      if !result.contains(port) { result.append(port) }
    }
    return result
  }

  func cidrList(_ flag: CaptureFlag, _ value: String) throws(InterceptionError) -> [CIDR] {
    guard !value.trimmingSpaces.isEmpty else { return [] }
    var result: [CIDR] = []
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      guard let cidr = CIDR(item.trimmingSpaces) else {
        throw invalid(flag, value, "\"\(item)\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)")
      }
      if !result.contains(cidr) { result.append(cidr) }
    }
    return result
  }

  mutating func interfaces(_ flag: CaptureFlag) throws(InterceptionError) -> [String] {
    let value = try string(flag) ?? ""
    guard !value.trimmingSpaces.isEmpty else { return [] }
    var result: [String] = []
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      let name = item.trimmingSpaces
      let valid =
        (1...15).contains(name.utf8.count)
        && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@+".contains($0)) }
      guard valid else { throw invalid(flag, value, "\"\(item)\" is not an interface name") }
      if !result.contains(name) { result.append(name) }
    }
    return result
  }

  func groups(_ flag: CaptureFlag, _ value: String) throws(InterceptionError) -> [UInt32] {
    guard !value.trimmingSpaces.isEmpty else { return [] }
    var result: [UInt32] = []
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      let name = item.trimmingSpaces
      if let gid = UInt32(name) {
        result.append(gid)
      } else if let entry = getgrnam(name) {
        result.append(entry.pointee.gr_gid)
      } else {
        throw invalid(flag, value, "\"\(name)\" is neither a gid nor a group known to this system")
      }
    }
    return result
  }

  /// Go-style durations (`5s`, `500ms`, `1m`, `1.5s`) or plain seconds.
  mutating func duration(_ flag: CaptureFlag) throws(InterceptionError) -> Duration? {
    guard let value = try string(flag) else { return nil }
    let text = value.trimmingSpaces
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    // Whole milliseconds that fit an Int64; "inf", "1e300s" and the like are bad input, not a trap.
    func milliseconds(_ number: Double, _ scale: Double) -> Duration? {
      let ms = number * scale * 1000
      guard number > 0, ms.isFinite, ms < Double(Int64.max) else { return nil }
      return .milliseconds(Int64(ms))
    }
    for (suffix, scale) in units where text.hasSuffix(suffix) {
      if let number = Double(text.dropLast(suffix.count)), let d = milliseconds(number, scale) { return d }
    }
    if let seconds = Double(text), let d = milliseconds(seconds, 1) { return d }
    throw invalid(flag, value, "not a duration (e.g. 5s, 500ms)")
  }
}

extension StringProtocol {
  var trimmingSpaces: String {
    let scalars = unicodeScalars.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
    return String(String.UnicodeScalarView(scalars.reversed()))
  }
}
