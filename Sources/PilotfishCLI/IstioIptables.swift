import ArgumentParser
import Foundation
import Interception
import Logging

/// `pilotfish istio-iptables`: istio-iptables' command line (flags, environment variables, defaults).
struct IstioIptables: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "istio-iptables",
    abstract: "Redirect a pod's TCP traffic to the sidecar (outbound → 15001, inbound → 15006).",
    discussion: """
      Accepts istio-iptables' flags and environment variables with the same defaults. Rules go in with native \
      nftables (libnftables, one atomic transaction for both families) or iptables-restore (legacy or nft), \
      chosen from the namespace's state with --backend auto. Re-running with the same flags changes nothing.
      Exit codes: 0 success, 1 error (bad input, missing privilege, rejected rules), 126 validation failed.
      """
  )

  @Option(
    name: [.customShort("p"), .customLong("envoy-port")], help: "Outbound capture port (default 15001).")
  var envoyPort: String?
  @Option(
    name: [.customShort("z"), .customLong("inbound-capture-port")],
    help: "Inbound capture port (default 15006).")
  var inboundCapturePort: String?
  @Option(
    name: [.customShort("e"), .customLong("inbound-tunnel-port")],
    help: "Port never captured (default 15008).")
  var inboundTunnelPort: String?
  @Option(
    name: [.customShort("u"), .customLong("proxy-uid")], help: "Proxy uid(s), comma separated (default 1337)."
  )
  var proxyUID: String?
  @Option(
    name: [.customShort("g"), .customLong("proxy-gid")],
    help: "Proxy gid(s), comma separated (default: the uids).")
  var proxyGID: String?
  @Option(
    name: [.customShort("m"), .customLong("istio-inbound-interception-mode")],
    help: "REDIRECT (default) or TPROXY.")
  var interceptionMode: String?
  @Option(
    name: [.customShort("b"), .customLong("istio-inbound-ports")],
    help: "Inbound ports to capture: '*' or a list.")
  var inboundPorts: String?
  @Option(
    name: [.customShort("d"), .customLong("istio-local-exclude-ports")],
    help: "Inbound ports never captured (with -b '*').")
  var localExcludePorts: String?
  @Option(
    name: [.customShort("c"), .customLong("istio-exclude-interfaces")], help: "Interfaces never captured.")
  var excludeInterfaces: String?
  @Option(
    name: [.customShort("i"), .customLong("istio-service-cidr")],
    help: "Outbound ranges to capture: '*' or CIDRs.")
  var serviceCIDR: String?
  @Option(
    name: [.customShort("x"), .customLong("istio-service-exclude-cidr")],
    help: "Outbound ranges never captured.")
  var serviceExcludeCIDR: String?
  @Option(
    name: [.customShort("q"), .customLong("istio-outbound-ports")], help: "Outbound ports always captured.")
  var outboundPorts: String?
  @Option(
    name: [.customShort("o"), .customLong("istio-local-outbound-ports-exclude")],
    help: "Outbound ports never captured.")
  var localOutboundPortsExclude: String?
  @Option(
    name: [.customShort("k"), .customLong("kube-virt-interfaces")], help: "KubeVirt interfaces (outbound).")
  var kubeVirtInterfaces: String?
  @Option(
    name: [.customShort("t"), .customLong("istio-inbound-tproxy-mark")], help: "TPROXY mark (default 1337).")
  var tproxyMark: String?
  @Option(
    name: [.customShort("r"), .customLong("istio-inbound-tproxy-route-table")],
    help: "TPROXY route table (default 133).")
  var tproxyRouteTable: String?
  @Option(name: .customLong("iptables-probe-port"), help: "Port the validation probes dial (default 15002).")
  var probePort: String?
  @Option(name: .customLong("probe-timeout"), help: "Validation timeout per probe (default 5s).")
  var probeTimeout: String?
  @Option(name: .customLong("outbound-owner-groups"), help: "Groups whose traffic is captured ('*' = all).")
  var ownerGroups: String?
  @Option(name: .customLong("outbound-owner-groups-exclude"), help: "Groups whose traffic is never captured.")
  var ownerGroupsExclude: String?
  @Option(
    name: .customLong("ipv4-loopback-cidr"),
    help: "IPv4 loopback range never captured (default 127.0.0.1/32).")
  var ipv4LoopbackCIDR: String?
  @Option(name: .customLong("network-namespace"), help: "Network namespace to work in (name or path).")
  var networkNamespace: String?
  @Option(name: .customLong("backend"), help: "auto (default), nftables, iptables-legacy or iptables-nft.")
  var backend: String?

  @Flag(
    name: [.customShort("n"), .customLong("dry-run")], help: "Print what would be applied and the difference."
  )
  var dryRun = false
  @Flag(name: .customLong("skip-rule-apply"), help: "Do not change rules (with --run-validation).")
  var skipRuleApply = false
  @Flag(
    name: .customLong("run-validation"),
    help: "Prove that connections reach the capture ports; exit 126 if not.")
  var runValidation = false
  @Flag(name: .customLong("redirect-dns"), help: "Redirect DNS to the agent's DNS proxy on 15053.")
  var redirectDNS = false
  @Flag(name: .customLong("capture-all-dns"), help: "Redirect all DNS, not only to resolv.conf servers.")
  var captureAllDNS = false
  @Flag(name: .customLong("drop-invalid"), help: "Drop conntrack-invalid packets.")
  var dropInvalid = false
  @Flag(name: .customLong("dual-stack"), help: "Also install IPv6 rules.")
  var dualStack = false
  @Flag(name: .customLong("cleanup-only"), help: "Remove everything Pilotfish installed, then exit.")
  var cleanupOnly = false
  @Flag(name: .customLong("force-apply"), help: "Apply even when the rules are already in place.")
  var forceApply = false
  @Flag(name: .customLong("native-nftables"), help: "Same as --backend nftables (Istio's flag).")
  var nativeNftables = false
  @Option(name: .customLong("log-level"), help: "trace, debug, info (default), notice, warning, error.")
  var logLevel: String = "info"

  func run() throws {
    // Must come first: only then do the threads started later live in the namespace too.
    if let networkNamespace, !networkNamespace.isEmpty {
      try report { () throws(InterceptionError) in try NetworkNamespace.enter(networkNamespace) }
    }
    var flags: [CaptureFlag: String] = [:]
    let options: [(CaptureFlag, String?)] = [
      (.envoyPort, envoyPort), (.inboundCapturePort, inboundCapturePort),
      (.inboundTunnelPort, inboundTunnelPort),
      (.proxyUID, proxyUID), (.proxyGID, proxyGID), (.interceptionMode, interceptionMode),
      (.inboundPorts, inboundPorts), (.localExcludePorts, localExcludePorts),
      (.excludeInterfaces, excludeInterfaces),
      (.serviceCIDR, serviceCIDR), (.serviceExcludeCIDR, serviceExcludeCIDR), (.outboundPorts, outboundPorts),
      (.localOutboundPortsExclude, localOutboundPortsExclude), (.kubeVirtInterfaces, kubeVirtInterfaces),
      (.tproxyMark, tproxyMark), (.tproxyRouteTable, tproxyRouteTable), (.probePort, probePort),
      (.probeTimeout, probeTimeout), (.ownerGroups, ownerGroups), (.ownerGroupsExclude, ownerGroupsExclude),
      (.ipv4LoopbackCIDR, ipv4LoopbackCIDR), (.backend, backend),
    ]
    for case (let flag, let value?) in options { flags[flag] = value }
    let switches: [(CaptureFlag, Bool)] = [
      (.dryRun, dryRun), (.skipRuleApply, skipRuleApply), (.runValidation, runValidation),
      (.redirectDNS, redirectDNS),
      (.captureAllDNS, captureAllDNS), (.dropInvalid, dropInvalid), (.dualStack, dualStack),
      (.cleanupOnly, cleanupOnly), (.forceApply, forceApply), (.nativeNftables, nativeNftables),
    ]
    for (flag, on) in switches where on { flags[flag] = "true" }

    let logger = try CommandLogging.start(logLevel: logLevel, label: "pilotfish.istio-iptables")
    let host = HostFacts.current()
    let code = try report { () throws(InterceptionError) -> Int32 in
      let settings = try CaptureSettings.resolve(
        flags: flags, environment: ProcessInfo.processInfo.environment, host: host)
      let runner = InterceptionRunner(settings: settings, host: host, logger: logger) { text in
        FileHandle.standardOutput.write(Data(text.utf8))
      }
      return try runner.run()
    }
    if code != 0 { throw ExitCode(code) }
  }

  /// Prints a library error as one line on standard error and exits 1.
  private func report<T>(_ body: () throws(InterceptionError) -> T) throws -> T {
    do {
      return try body()
    } catch {
      FileHandle.standardError.write(Data("pilotfish istio-iptables: error: \(error.message)\n".utf8))
      throw ExitCode.failure
    }
  }
}
