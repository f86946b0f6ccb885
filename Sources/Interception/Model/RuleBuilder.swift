/// Turns a `CaptureConfig` into Istio's rule layout, rule for rule and in Istio's emission order
/// (`tools/istio-iptables/pkg/capture/run.go`), as one family-aware model.
///
/// Deliberate differences from Istio, each because Istio's own behaviour contradicts its intent:
/// - In TPROXY mode the inbound tunnel port (15008) is exempted in the mangle ISTIO_INBOUND chain, where
///   inbound capture actually happens (Istio leaves the RETURN in an unused nat chain, so 15008 is captured).
/// - Owner-group names are resolved to gids before they reach the model.
package enum RuleBuilder {
  /// The mark the proxy's own loopback traffic gets in TPROXY mode (Istio's constant).
  package static let outboundLoopbackMark: UInt32 = 1338

  package static func build(_ c: CaptureConfig) -> Ruleset {
    var r = Ruleset(families: c.families)
    let tproxy = c.inboundMode == .tproxy
    let inboundTable: NetfilterTable = tproxy ? .mangle : .nat
    let captureInbound = c.inboundPorts != .none
    let owners: [(UInt32, Bool)] = c.proxyUIDs.map { ($0, true) } + c.proxyGIDs.map { ($0, false) }
    func owner(_ id: UInt32, uid: Bool, negated: Bool = false) -> Match {
      uid ? .uidOwner(id, negated: negated) : .gidOwner(id, negated: negated)
    }

    // 1. Excluded interfaces are never captured, in either direction.
    for nic in c.excludeInterfaces {
      for table in tproxy ? [NetfilterTable.nat, .mangle] : [.nat] {
        r.append(Rule(table, .prerouting, [.inInterface(nic, negated: false)], .return))
        r.append(Rule(table, .output, [.outInterface(nic, negated: false)], .return))
      }
    }
    // 2. Traffic arriving from KubeVirt interfaces is outbound traffic of the VM, not inbound.
    for nic in c.kubeVirtInterfaces {
      r.append(Rule(.nat, .prerouting, [.inInterface(nic, negated: false)], .return, insertAt: 1))
    }
    // 3. Conntrack-invalid packets are dropped before they can reach the application unproxied.
    if c.dropInvalid {
      r.append(Rule(.mangle, .prerouting, [.conntrackState(["INVALID"])], .jump(.drop)))
      r.append(Rule(.mangle, .drop, [], .drop))
    }
    // 4-6. The tunnel port passes; the two redirect chains.
    if !tproxy || captureInbound {
      r.append(
        Rule(
          inboundTable, .inbound,
          [.l4(.tcp), .destinationPorts(.tcp, [c.inboundTunnelPort], negated: false)],
          .return))
    }
    r.append(Rule(.nat, .redirect, [.l4(.tcp)], .redirect(toPort: c.proxyPort)))
    r.append(Rule(.nat, .inRedirect, [.l4(.tcp)], .redirect(toPort: c.inboundCapturePort)))

    // 7. Inbound capture.
    if captureInbound {
      if tproxy {
        r.append(Rule(.mangle, .divert, [], .setMark(c.tproxyMark)))
        r.append(Rule(.mangle, .divert, [], .accept))
        for family in c.families {
          r.append(
            Rule(
              .mangle, .tproxy, [.destination(c.loopback(family), negated: true), .l4(.tcp)],
              .tproxy(toPort: c.inboundCapturePort, mark: c.tproxyMark)))
        }
      }
      r.append(Rule(inboundTable, .prerouting, [.l4(.tcp)], .jump(.inbound)))
      func capture(_ ports: [UInt16]) {
        let portMatch: [Match] = ports.isEmpty ? [] : [.destinationPorts(.tcp, ports, negated: false)]
        if tproxy {
          r.append(
            Rule(
              .mangle, .inbound, [.l4(.tcp)] + portMatch + [.conntrackState(["RELATED", "ESTABLISHED"])],
              .jump(.divert)))
          r.append(Rule(.mangle, .inbound, [.l4(.tcp)] + portMatch, .jump(.tproxy)))
        } else {
          r.append(Rule(.nat, .inbound, [.l4(.tcp)] + portMatch, .jump(.inRedirect)))
        }
      }
      switch c.inboundPorts {
      case .none: break
      case .all:
        for port in c.inboundExcludePorts {
          r.append(
            Rule(
              inboundTable, .inbound, [.l4(.tcp), .destinationPorts(.tcp, [port], negated: false)], .return))
        }
        capture([])
      case .ports(let ports):
        for port in ports { capture([port]) }
      }
    }

    // 8-9. Outbound: every locally generated packet goes through ISTIO_OUTPUT.
    r.append(Rule(.nat, .output, [], .jump(.outputChain)))
    for port in c.outboundExcludePorts {
      for proto in [L4Protocol.tcp, .udp] {
        r.append(
          Rule(.nat, .outputChain, [.l4(proto), .destinationPorts(proto, [port], negated: false)], .return))
      }
    }
    // 10. Envoy's inbound passthrough source and the agent's probe source are never captured.
    for family in c.families {
      let passthrough: CIDR = family == .v4 ? .ipv4Passthrough : .ipv6Passthrough
      r.append(
        Rule(
          .nat, .outputChain, [.outInterface("lo", negated: false), .source(passthrough, negated: false)],
          .return))
    }
    // 11-12. The proxy's own traffic: calls to its own pod IP over lo are inbound; the rest passes.
    let dns = c.redirectDNS
    for (id, isUID) in owners {
      let exemptPorts: [UInt16] = dns && isUID ? [53, c.inboundTunnelPort] : [c.inboundTunnelPort]
      for family in c.families {
        r.append(
          Rule(
            .nat, .outputChain,
            [
              .outInterface("lo", negated: false), .destination(c.loopback(family), negated: true), .l4(.tcp),
              .destinationPorts(.tcp, exemptPorts, negated: true), owner(id, uid: isUID),
            ], .jump(.inRedirect)))
      }
      if !c.includesLoopbackRange {
        if dns {
          r.append(
            Rule(
              .nat, .outputChain,
              [
                .outInterface("lo", negated: false), .l4(.tcp), .destinationPorts(.tcp, [53], negated: true),
                owner(id, uid: isUID, negated: true),
              ], .return))
        } else {
          r.append(
            Rule(
              .nat, .outputChain,
              [.outInterface("lo", negated: false), owner(id, uid: isUID, negated: true)], .return))
        }
      }
      r.append(Rule(.nat, .outputChain, [owner(id, uid: isUID)], .return))
    }
    // 13. Owner groups.
    if let include = c.ownerGroupsInclude {
      r.append(Rule(.nat, .outputChain, include.map { .gidOwner($0, negated: true) }, .return))
    }
    for gid in c.ownerGroupsExclude {
      r.append(Rule(.nat, .outputChain, [.gidOwner(gid, negated: false)], .return))
    }
    // 14. DNS to the agent's DNS proxy, with conntrack zones keeping the two legs apart.
    if dns && (c.captureAllDNS || !c.dnsServers.isEmpty) {
      let servers: [CIDR?] = c.captureAllDNS ? [nil] : c.dnsServers.map { $0 }
      func serverMatch(_ s: CIDR?, source: Bool = false) -> [Match] {
        guard let s else { return [] }
        return [source ? .source(s, negated: false) : .destination(s, negated: false)]
      }
      r.append(Rule(.raw, .output, [], .jump(.outputDNS)))
      r.append(Rule(.nat, .outputChain, [], .jump(.outputDNS)))
      for server in servers {
        r.append(
          Rule(
            .nat, .outputDNS,
            [.l4(.tcp), .destinationPorts(.tcp, [53], negated: false)] + serverMatch(server),
            .redirect(toPort: c.dnsCapturePort)))
      }
      for (id, isUID) in owners {
        r.append(
          Rule(
            .nat, .outputDNS,
            [.l4(.udp), .destinationPorts(.udp, [53], negated: false), owner(id, uid: isUID)],
            .return))
      }
      for server in servers {
        r.append(
          Rule(
            .nat, .outputDNS,
            [.l4(.udp), .destinationPorts(.udp, [53], negated: false)] + serverMatch(server),
            .redirect(toPort: c.dnsCapturePort)))
      }
      for (id, isUID) in owners {
        r.append(
          Rule(
            .raw, .outputDNS,
            [.l4(.udp), .destinationPorts(.udp, [53], negated: false), owner(id, uid: isUID)],
            .conntrackZone(1)))
        r.append(
          Rule(
            .raw, .outputDNS, [.l4(.udp), .sourcePort(.udp, c.dnsCapturePort), owner(id, uid: isUID)],
            .conntrackZone(2)))
      }
      let dnsFamilies =
        c.captureAllDNS ? c.families : c.families.filter { f in c.dnsServers.contains { $0.family == f } }
      for family in dnsFamilies {
        r.append(Rule(.raw, .prerouting, [], .jump(.inbound), family: family))
      }
      for server in servers {
        r.append(
          Rule(
            .raw, .outputDNS,
            [.l4(.udp), .destinationPorts(.udp, [53], negated: false)] + serverMatch(server),
            .conntrackZone(2)))
        r.append(
          Rule(
            .raw, .inbound, [.l4(.udp), .sourcePort(.udp, 53)] + serverMatch(server, source: true),
            .conntrackZone(1)))
      }
    }
    // 15. Loopback destinations and excluded ranges pass.
    for family in c.families {
      r.append(Rule(.nat, .outputChain, [.destination(c.loopback(family), negated: false)], .return))
    }
    for range in c.outboundExcludeRanges {
      r.append(Rule(.nat, .outputChain, [.destination(range, negated: false)], .return))
    }
    // 16. Ports that are always captured.
    for port in c.outboundIncludePorts {
      r.append(
        Rule(
          .nat, .outputChain, [.l4(.tcp), .destinationPorts(.tcp, [port], negated: false)], .jump(.redirect)))
    }
    // 17. Outbound include ranges.
    switch c.outboundRanges {
    case .none: break
    case .all:
      r.append(Rule(.nat, .outputChain, [], .jump(.redirect)))
      for nic in c.kubeVirtInterfaces {
        r.append(Rule(.nat, .prerouting, [.inInterface(nic, negated: false)], .jump(.redirect), insertAt: 1))
      }
    case .ranges(let ranges):
      for range in ranges {
        for nic in c.kubeVirtInterfaces {
          r.append(
            Rule(
              .nat, .prerouting, [.inInterface(nic, negated: false), .destination(range, negated: false)],
              .jump(.redirect), insertAt: 1))
        }
        r.append(Rule(.nat, .outputChain, [.destination(range, negated: false)], .jump(.redirect)))
      }
    }
    // 18. TPROXY: keep the mark on the connection, so replies route back through the proxy.
    if tproxy && captureInbound {
      let mark = c.tproxyMark
      r.append(Rule(.mangle, .prerouting, [.l4(.tcp), .mark(mark, negated: false)], .saveMarkToConnmark))
      r.append(
        Rule(
          .mangle, .output, [.l4(.tcp), .outInterface("lo", negated: false), .mark(mark, negated: false)],
          .return))
      for (id, isUID) in owners {
        for family in c.families {
          r.append(
            Rule(
              .mangle, .output,
              [
                .destination(c.loopback(family), negated: true), .l4(.tcp),
                .outInterface("lo", negated: false),
                owner(id, uid: isUID),
              ], .setMark(outboundLoopbackMark)))
        }
      }
      r.append(Rule(.mangle, .output, [.l4(.tcp), .connmark(mark)], .restoreMarkFromConnmark))
      r.append(Rule(.mangle, .inbound, [.l4(.tcp), .mark(mark, negated: false)], .return, insertAt: 1))
      for family in c.families {
        let passthrough: CIDR = family == .v4 ? .ipv4Passthrough : .ipv6Passthrough
        r.append(
          Rule(
            .mangle, .inbound,
            [.l4(.tcp), .source(passthrough, negated: false), .inInterface("lo", negated: false)], .return,
            insertAt: 2))
      }
      r.append(
        Rule(
          .mangle, .inbound,
          [.l4(.tcp), .inInterface("lo", negated: false), .mark(outboundLoopbackMark, negated: true)],
          .return,
          insertAt: 3))
    }
    return r
  }
}
