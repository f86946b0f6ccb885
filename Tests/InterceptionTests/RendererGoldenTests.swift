internal import Foundation
internal import Testing

@testable internal import Interception

/// Golden outputs of both renderers for representative istio-iptables flag sets: what `--dry-run` prints
/// and what is applied on a clean namespace. Regenerate with PILOTFISH_UPDATE_GOLDEN=1 after a deliberate
/// change, and review the diff.
@Suite struct RendererGoldenTests {
  struct Case: Sendable, CustomStringConvertible {
    var name: String
    var flags: [CaptureFlag: String]
    var host = HostFacts(kernelIPv6: true, addresses: [], nameservers: [], hasNetAdmin: true)
    var description: String { name }
  }

  static let injector: [CaptureFlag: String] = [
    .envoyPort: "15001", .inboundCapturePort: "15006", .proxyUID: "1337", .interceptionMode: "REDIRECT",
    .serviceCIDR: "*", .serviceExcludeCIDR: "", .inboundPorts: "*", .localExcludePorts: "15090,15021,15020",
  ]

  static let cases: [Case] = [
    Case(name: "injector-defaults", flags: injector),
    Case(name: "injector-dual-stack", flags: injector.merging([.dualStack: "true"]) { $1 }),
    Case(
      name: "tproxy-dns-dual-stack",
      flags: [
        .interceptionMode: "TPROXY", .inboundPorts: "*", .serviceCIDR: "9.9.0.0/16",
        .serviceExcludeCIDR: "1.1.0.0/16",
        .excludeInterfaces: "not-istio-nic", .redirectDNS: "true", .dualStack: "true",
      ],
      host: HostFacts(kernelIPv6: true, addresses: [], nameservers: [CIDR("127.0.0.53")!], hasNetAdmin: true)),
    Case(name: "ipnets-kube-virt", flags: [.serviceCIDR: "10.0.0.0/8", .kubeVirtInterfaces: "eth1,eth2"]),
    Case(
      name: "ports-owner-groups-drop-invalid",
      flags: [
        .inboundPorts: "32000,31000", .serviceCIDR: "*", .outboundPorts: "8080",
        .localOutboundPortsExclude: "5432",
        .ownerGroupsExclude: "1234,5678", .dropInvalid: "true",
      ]),
    Case(name: "empty", flags: [:]),
    Case(
      name: "capture-all-dns-uid-gid",
      flags: [.proxyUID: "3,4", .proxyGID: "1,2", .redirectDNS: "true", .captureAllDNS: "true"]),
    Case(name: "loopback-include", flags: [.serviceCIDR: "127.0.0.0/8", .ipv4LoopbackCIDR: "127.0.0.1/8"]),
    Case(
      name: "tproxy-port-list-ipv6-disabled",
      flags: [.interceptionMode: "TPROXY", .inboundPorts: "80,443", .serviceCIDR: "*", .dualStack: "true"],
      host: HostFacts(kernelIPv6: false, addresses: [], nameservers: [], hasNetAdmin: true)),
  ]

  static func render(_ c: Case) throws -> String {
    let settings = try CaptureSettings.resolve(flags: c.flags, environment: [:], host: c.host)
    let ruleset = RuleBuilder.build(settings.config)
    var out =
      "# flags: " + c.flags.map { "--\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: " ") + "\n"
    for notice in settings.notices { out += "# notice: \(notice)\n" }
    for family in ruleset.families {
      out += "# iptables-restore --noflush (\(family))\n" + IptablesRenderer.payload(ruleset, family: family)
    }
    out += "# nft transaction\n" + NftRenderer.transaction(ruleset)
    return out
  }

  static var goldenDirectory: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
  }

  @Test(arguments: cases)
  func matchesGolden(_ c: Case) throws {
    let rendered = try Self.render(c)
    let file = Self.goldenDirectory.appendingPathComponent("\(c.name).golden")
    if ProcessInfo.processInfo.environment["PILOTFISH_UPDATE_GOLDEN"] == "1" {
      try rendered.write(to: file, atomically: true, encoding: .utf8)
    }
    let golden = try String(contentsOf: file, encoding: .utf8)
    #expect(rendered == golden, "rendering of \(c.name) differs from \(file.path)")
  }

  /// The injector's flags give Istio's rules, rule for rule and in order (Istio's
  /// inbound-ports-wildcard golden plus the `-d` exclusions and the `-i '*'` catch-all).
  @Test func injectorDefaultsMatchIstioRuleForRule() throws {
    let settings = try CaptureSettings.resolve(
      flags: Self.injector, environment: [:], host: Self.cases[0].host)
    let ruleset = RuleBuilder.build(settings.config)
    let lines = ruleset.rules.filter { $0.applies(to: .v4) }.map { rule in
      "-A \(rule.chain.iptablesName) \(IptablesRenderer.body(of: rule))"
    }
    #expect(
      lines == [
        "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A PREROUTING -p tcp -j ISTIO_INBOUND",
        "-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN",
        "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN",
        "-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN",
        "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT",
        "-A OUTPUT -j ISTIO_OUTPUT",
        "-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
        "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
      ])
  }

  /// KubeVirt interfaces: inserted PREROUTING rules end up in Istio's order (last inserted first).
  @Test func kubeVirtInsertsEndUpInIstioOrder() throws {
    let settings = try CaptureSettings.resolve(
      flags: Self.cases[3].flags, environment: [:], host: Self.cases[0].host)
    let order = RuleBuilder.build(settings.config).finalOrder(table: .nat, chain: .prerouting, family: .v4)
      .map { IptablesRenderer.body(of: $0) }
    #expect(
      order == [
        "-i eth2 -d 10.0.0.0/8 -j ISTIO_REDIRECT", "-i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT",
        "-i eth2 -j RETURN", "-i eth1 -j RETURN",
      ])
  }

  @Test func ruleIdsAreStableAndDistinct() throws {
    let settings = try CaptureSettings.resolve(
      flags: Self.cases[2].flags, environment: [:], host: Self.cases[2].host)
    let ruleset = RuleBuilder.build(settings.config)
    let ids = ruleset.rules.map(RuleIdentity.id(of:))
    #expect(Set(ids).count == ids.count)
    #expect(ids.allSatisfy { $0.hasPrefix("pf:") && $0.count == 11 })
    #expect(
      RuleIdentity.id(of: ruleset.rules[0])
        == RuleIdentity.id(of: RuleBuilder.build(settings.config).rules[0]))
  }
}
