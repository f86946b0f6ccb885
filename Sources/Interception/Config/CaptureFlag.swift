/// Every input of `pilotfish istio-iptables`: istio-iptables' flags, their environment variables and
/// defaults (`tools/istio-iptables/pkg/cmd/root.go`), plus Pilotfish's `--backend`.
///
/// Precedence is Istio's: the flag, then its environment variables in order, then the default.
package enum CaptureFlag: String, Sendable, CaseIterable, Hashable {
  case envoyPort = "envoy-port"
  case inboundCapturePort = "inbound-capture-port"
  case inboundTunnelPort = "inbound-tunnel-port"
  case proxyUID = "proxy-uid"
  case proxyGID = "proxy-gid"
  case interceptionMode = "istio-inbound-interception-mode"
  case inboundPorts = "istio-inbound-ports"
  case localExcludePorts = "istio-local-exclude-ports"
  case excludeInterfaces = "istio-exclude-interfaces"
  case serviceCIDR = "istio-service-cidr"
  case serviceExcludeCIDR = "istio-service-exclude-cidr"
  case outboundPorts = "istio-outbound-ports"
  case localOutboundPortsExclude = "istio-local-outbound-ports-exclude"
  case kubeVirtInterfaces = "kube-virt-interfaces"
  case tproxyMark = "istio-inbound-tproxy-mark"
  case tproxyRouteTable = "istio-inbound-tproxy-route-table"
  case probePort = "iptables-probe-port"
  case probeTimeout = "probe-timeout"
  case ownerGroups = "outbound-owner-groups"
  case ownerGroupsExclude = "outbound-owner-groups-exclude"
  case ipv4LoopbackCIDR = "ipv4-loopback-cidr"
  case networkNamespace = "network-namespace"
  case backend = "backend"
  // Booleans.
  case dryRun = "dry-run"
  case skipRuleApply = "skip-rule-apply"
  case runValidation = "run-validation"
  case redirectDNS = "redirect-dns"
  case captureAllDNS = "capture-all-dns"
  case dropInvalid = "drop-invalid"
  case dualStack = "dual-stack"
  case cleanupOnly = "cleanup-only"
  case forceApply = "force-apply"
  case nativeNftables = "native-nftables"

  package var short: Character? {
    switch self {
    case .envoyPort: "p"
    case .inboundCapturePort: "z"
    case .inboundTunnelPort: "e"
    case .proxyUID: "u"
    case .proxyGID: "g"
    case .interceptionMode: "m"
    case .inboundPorts: "b"
    case .localExcludePorts: "d"
    case .excludeInterfaces: "c"
    case .serviceCIDR: "i"
    case .serviceExcludeCIDR: "x"
    case .outboundPorts: "q"
    case .localOutboundPortsExclude: "o"
    case .kubeVirtInterfaces: "k"
    case .tproxyMark: "t"
    case .tproxyRouteTable: "r"
    case .dryRun: "n"
    default: nil
    }
  }

  /// Environment variables read when the flag is absent, in order of precedence.
  package var environment: [String] {
    switch self {
    case .envoyPort: []
    case .redirectDNS: ["REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE"]
    case .dropInvalid: ["DROP_INVALID", "INVALID_DROP"]
    case .dualStack: ["DUAL_STACK", "ISTIO_DUAL_STACK"]
    case .ownerGroups: ["ISTIO_OUTBOUND_OWNER_GROUPS"]
    case .ownerGroupsExclude: ["ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE"]
    case .ipv4LoopbackCIDR: ["ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"]
    case .backend: ["PILOTFISH_INTERCEPTION_BACKEND"]
    default: [String(rawValue.uppercased().map { $0 == "-" ? "_" : $0 })]
    }
  }

  package var isBoolean: Bool {
    switch self {
    case .dryRun, .skipRuleApply, .runValidation, .redirectDNS, .captureAllDNS, .dropInvalid, .dualStack,
      .cleanupOnly, .forceApply, .nativeNftables:
      true
    default: false
    }
  }

  /// How errors name the input: `-p/--envoy-port`.
  package var flagName: String { (short.map { "-\($0)/" } ?? "") + "--\(rawValue)" }
}
