internal import Foundation
internal import Testing

/// The interception spec, end to end: `pilotfish istio-iptables` run as a real process in a pod namespace, real
/// connections from real processes under different uids, for every backend.
@Suite(.serialized, .enabled(if: Privilege.shouldRun, "needs root (network namespaces)")) struct InterceptionScenarioTests {
  static let backends = ["nftables", "iptables-legacy", "iptables-nft"]

  /// Istio's injector flags plus exclusions: an excluded range, an excluded outbound port, an excluded
  /// interface and an inbound port left alone.
  func injectorFlags(_ net: PodNetwork, backend: String) -> [String] {
    [
      "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", net.excludedRange, "-b",
      "*",
      "-d", "15020", "-o", "9090", "-c", net.podLinkBName, "--dual-stack", "--backend", backend,
    ]
  }

  @Test(arguments: backends)
  func redirectCapturesOutboundAndInboundForBothFamilies(backend: String) throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let before = try net.netfilterState()

    let install = try net.interception(injectorFlags(net, backend: backend))
    #expect(install.status == 0, "install failed: \(install.stderr)")
    try net.serve(in: net.pod, tcp: [15001, 15006, 8080, 15020])
    try net.serve(in: net.remote, tcp: [8080, 9090])

    // An application (uid 1000) is captured with the original destination intact.
    #expect(
      try net.connect(from: net.pod, to: net.remoteV4, port: 8080).hasPrefix(
        "port=15001 orig=\(net.remoteV4):8080"))
    #expect(
      try net.connect(from: net.pod, to: net.remoteV6, port: 8080).hasPrefix(
        "port=15001 orig=[\(net.remoteV6)]:8080"))
    // The proxy's own uid, or its gid, goes direct.
    #expect(try net.landed(from: net.pod, uid: 1337, to: net.remoteV4, port: 8080) == 8080)
    #expect(try net.landed(from: net.pod, uid: 1337, to: net.remoteV6, port: 8080) == 8080)
    #expect(try net.landed(from: net.pod, uid: 1000, gid: 1337, to: net.remoteV4, port: 8080) == 8080)
    // Exclusions: range (-x), outbound port (-o), interface (-c).
    #expect(try net.landed(from: net.pod, to: net.remoteExcludedV4, port: 8080) == 8080)
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 9090) == 9090)
    #expect(try net.landed(from: net.pod, to: net.remoteLinkB, port: 8080) == 8080)
    // Inbound lands on 15006, except excluded ports (-d) and the excluded interface.
    #expect(
      try net.connect(from: net.remote, uid: 0, to: net.podV4, port: 8080).hasPrefix(
        "port=15006 orig=\(net.podV4):8080"))
    #expect(
      try net.connect(from: net.remote, uid: 0, to: net.podV6, port: 8080).hasPrefix(
        "port=15006 orig=[\(net.podV6)]:8080"))
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 15020) == 15020)
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podLinkB, port: 8080) == 8080)
    // 15008 is never captured: nothing listens there, so the connection is refused rather than proxied.
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 15008) == nil)

    // Re-running changes nothing.
    let installed = try net.netfilterState()
    let again = try net.interception(injectorFlags(net, backend: backend))
    #expect(again.status == 0)
    #expect(again.stderr.contains("nothing changed"), "re-run was not a no-op: \(again.stderr)")
    #expect(try net.netfilterState() == installed)
    // The dry run agrees.
    let dry = try net.interception(injectorFlags(net, backend: backend) + ["--dry-run"])
    #expect(dry.stdout.contains("difference from what is installed now: none"))

    // Cleanup restores the namespace.
    let cleanup = try net.interception(["--cleanup-only"])
    #expect(cleanup.status == 0, "cleanup failed: \(cleanup.stderr)")
    #expect(try net.netfilterState() == before)
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 8080) == 8080)
  }

  @Test(arguments: backends)
  func dnsIsRedirectedToTheAgent(backend: String) throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let flags = [
      "-i", "*", "-b", "*", "--redirect-dns", "--capture-all-dns", "--dual-stack", "--backend", backend,
    ]
    let install = try net.interception(flags)
    #expect(install.status == 0, "install failed: \(install.stderr)")
    try net.serve(in: net.pod, tcp: [15001, 15053], udp: [15053])
    try net.serve(in: net.remote, tcp: [53], udp: [53])
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 53, udp: true) == 15053)
    #expect(try net.landed(from: net.pod, to: net.remoteV6, port: 53, udp: true) == 15053)
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 53) == 15053)
    // The agent's own DNS queries (proxy uid) reach the real server.
    #expect(try net.landed(from: net.pod, uid: 1337, to: net.remoteV4, port: 53, udp: true) == 53)
    #expect(try net.interception(["--cleanup-only"]).status == 0)
  }

  /// Without --capture-all-dns only the resolv.conf servers are redirected (`ip netns exec` bind-mounts
  /// /etc/netns/<pod>/resolv.conf over /etc/resolv.conf, so the pod gets its own).
  @Test func dnsToResolvConfServersOnly() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let directory = "/etc/netns/\(net.pod)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try "nameserver \(net.remoteV4)\n".write(toFile: directory + "/resolv.conf", atomically: true, encoding: .utf8)
    let install = try net.interception(["-i", "*", "--redirect-dns"])
    #expect(install.status == 0, "install failed: \(install.stderr)")
    try net.serve(in: net.pod, tcp: [15001, 15053], udp: [15053])
    try net.serve(in: net.remote, tcp: [53], udp: [53])
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 53, udp: true) == 15053)
    #expect(try net.landed(from: net.pod, to: net.remoteExcludedV4, port: 53, udp: true) == 53)
  }

  @Test(arguments: backends)
  func tproxyDeliversWithOriginalAddresses(backend: String) throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let before = try net.netfilterState()
    let install = try net.interception([
      "-m", "TPROXY", "-b", "*", "-d", "15020", "-i", "*", "--dual-stack", "--backend", backend,
    ])
    #expect(install.status == 0, "install failed: \(install.stderr)")
    let rules =
      try net.exec(net.pod, ["ip", "rule"]).stdout + (try net.exec(net.pod, ["ip", "-6", "rule"]).stdout)
    #expect(
      rules.components(separatedBy: "fwmark 0x539 lookup 133").count == 3, "policy rules missing: \(rules)")
    try net.serve(in: net.pod, tcp: [15001, 15006, 8080])
    let v4 = try net.connect(from: net.remote, uid: 0, to: net.podV4, port: 8080)
    #expect(v4.hasPrefix("port=15006 orig=\(net.podV4):8080 peer=\(net.remoteV4):"), "\(v4)")
    let v6 = try net.connect(from: net.remote, uid: 0, to: net.podV6, port: 8080)
    #expect(v6.hasPrefix("port=15006 orig=[\(net.podV6)]:8080 peer=[\(net.remoteV6)]:"), "\(v6)")
    #expect(try net.interception(["--cleanup-only"]).status == 0)
    #expect(try net.netfilterState() == before)
  }

  @Test func validationProvesCaptureAndFailsWith126WithoutRules() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let flags = ["-i", "*", "-b", "*", "--dual-stack", "--probe-timeout", "2s"]
    let install = try net.interception(flags + ["--run-validation"])
    #expect(install.status == 0, "validation failed with rules in place: \(install.stderr)")
    #expect(install.stderr.contains("validation passed: inbound IPv4"))
    #expect(install.stderr.contains("validation passed: inbound IPv6"))
    #expect(install.stderr.contains("validation passed: outbound IPv4"))
    #expect(install.stderr.contains("validation passed: outbound IPv6"))
    #expect(try net.interception(["--cleanup-only"]).status == 0)
    let without = try net.interception(
      flags + ["--run-validation", "--skip-rule-apply", "--probe-timeout", "500ms"])
    #expect(without.status == 126)
    #expect(without.stderr.contains("validation failed"))
  }

  @Test func aChangedConfigOrBackendReplacesTheRulesInOneStep() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    try net.serve(in: net.pod, tcp: [15001, 15006, 8080, 9999])
    #expect(try net.interception(["-b", "*", "--backend", "nftables"]).status == 0)
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 9999) == 15006)
    // Only 8080 now: 9999 reaches its own listener.
    #expect(try net.interception(["-b", "8080", "--backend", "nftables"]).status == 0)
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 9999) == 9999)
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 8080) == 15006)
    // Switching backend moves the rules: none are left in nftables.
    let moved = try net.interception(["-b", "8080", "--backend", "iptables-legacy"])
    #expect(moved.status == 0)
    #expect(try net.exec(net.pod, ["nft", "list", "tables"]).stdout.contains("pilotfish") == false)
    #expect(try net.landed(from: net.remote, uid: 0, to: net.podV4, port: 8080) == 15006)
    // And auto keeps using the backend that holds them.
    let auto = try net.interception(["-b", "8080"])
    #expect(auto.stderr.contains("interception.backend=iptables-legacy"))
    #expect(auto.stderr.contains("nothing changed"))
  }

  @Test func badInputAndMissingPrivilegeFailCleanly() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let before = try net.netfilterState()
    let badCIDR = try net.interception(["-i", "*", "-x", "10.0.0.0/33"])
    #expect(badCIDR.status == 1)
    #expect(
      badCIDR.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        == "pilotfish istio-iptables: error: invalid value \"10.0.0.0/33\" for -x/--istio-service-exclude-cidr: \"10.0.0.0/33\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
    )
    let badMode = try net.interception(["-m", "BOGUS"])
    #expect(badMode.status == 1)
    #expect(badMode.stderr.contains("-m/--istio-inbound-interception-mode"))
    let badPorts = try net.exec(
      net.pod, ["env", "ISTIO_INBOUND_PORTS=80,x", PodNetwork.pilotfish, "istio-iptables"])
    #expect(badPorts.status == 1)
    #expect(badPorts.stderr.contains("ISTIO_INBOUND_PORTS (environment"))
    // Without CAP_NET_ADMIN: one line that says what is missing.
    let unprivileged = try net.exec(
      net.pod,
      [
        "setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups", PodNetwork.pilotfish,
        "istio-iptables", "-i", "*",
      ])
    #expect(unprivileged.status == 1)
    #expect(unprivileged.stderr.contains("needs CAP_NET_ADMIN"))
    #expect(try net.netfilterState() == before)
    // A dry run needs no privilege and prints the payload.
    let dry = try net.exec(
      net.pod,
      [
        "setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups", PodNetwork.pilotfish,
        "istio-iptables", "-i", "*", "-n",
      ])
    #expect(dry.status == 0)
    #expect(
      dry.stdout.contains(
        "add rule inet pilotfish-nat istio-redirect meta l4proto tcp counter redirect to :15001"))
  }

  @Test func ipv6DisabledKernelInstallsIPv4Only() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork(ipv6: false)
    defer { net.close() }
    let install = try net.interception(["-i", "*", "-b", "*", "--dual-stack"])
    #expect(install.status == 0, "\(install.stderr)")
    #expect(install.stderr.contains("IPv6 is disabled"))
    #expect(install.stderr.contains("interception.families=IPv4 "))
    try net.serve(in: net.pod, tcp: [15001])
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 8080) == 15001)
  }

  /// `--network-namespace` (Istio's CNI-style use): run from the host, rules land in the pod namespace only.
  @Test func networkNamespaceFlagTargetsThePod() throws {
    guard Privilege.require() else { return }
    let net = try PodNetwork()
    defer { net.close() }
    let hostBefore = try PodNetwork.run("/usr/sbin/nft", ["list", "tables"]).stdout
    let install = try PodNetwork.run(
      PodNetwork.pilotfish,
      ["istio-iptables", "-i", "*", "-b", "*", "--network-namespace", net.pod, "--run-validation", "--probe-timeout", "2s"])
    #expect(install.status == 0, "\(install.stderr)")
    // Validation ran inside the pod: its outbound probe went to the pod's gateway, not the host's.
    #expect(install.stderr.contains("validation passed: outbound IPv4"))
    #expect(install.stderr.contains("original destination \(net.remoteV4):15002"))
    #expect(try PodNetwork.run("/usr/sbin/nft", ["list", "tables"]).stdout == hostBefore)
    try net.serve(in: net.pod, tcp: [15001])
    #expect(try net.landed(from: net.pod, to: net.remoteV4, port: 8080) == 15001)
    let missing = try PodNetwork.run(
      PodNetwork.pilotfish, ["istio-iptables", "--network-namespace", "pf-no-such-ns"])
    #expect(missing.status == 1)
    #expect(missing.stderr.contains("for --network-namespace: /var/run/netns/pf-no-such-ns"))
  }
}
