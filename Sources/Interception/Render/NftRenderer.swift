/// Renders a `Ruleset` as one nftables transaction over Pilotfish's own `inet` tables.
///
/// The transaction first empties every Pilotfish table (`add table` + `delete table`, so it holds whether or
/// not the table exists), then recreates the ones the ruleset needs. libnftables submits it as one netlink
/// batch: the kernel applies all of it or none. Every rule has a `counter` and a `pf:<id>` comment.
package enum NftRenderer {
  /// One rule as it appears in a chain: its id and the text after `add rule inet TABLE CHAIN`.
  package struct ChainRule: Sendable, Equatable {
    package var id: String
    package var text: String
  }

  /// The id of the guard rule that keeps IPv6 out of the tables when only IPv4 is intercepted.
  package static let ipv4OnlyGuardID = "pf:00000006"

  /// The complete transaction that makes the namespace's Pilotfish tables equal to `ruleset`.
  package static func transaction(_ ruleset: Ruleset) -> String {
    var out = ""
    for table in NetfilterTable.allCases {
      out += "add table inet \(table.nftName)\ndelete table inet \(table.nftName)\n"
    }
    for table in tableOrder where ruleset.tables().contains(table) {
      out += "add table inet \(table.nftName)\n"
      for chain in ruleset.builtinChains(in: table) {
        out += "add chain inet \(table.nftName) \(chain.nftName) { \(baseChainSpec(table, chain)) }\n"
      }
      for chain in ruleset.customChains(in: table) {
        out += "add chain inet \(table.nftName) \(chain.nftName)\n"
      }
      for chain in ruleset.builtinChains(in: table) + ruleset.customChains(in: table) {
        for rule in rules(ruleset, table: table, chain: chain) {
          out += "add rule inet \(table.nftName) \(chain.nftName) \(rule.text)\n"
        }
      }
    }
    return out
  }

  /// The transaction that removes every Pilotfish table, present or not.
  package static func cleanupTransaction() -> String {
    NetfilterTable.allCases.map { "add table inet \($0.nftName)\ndelete table inet \($0.nftName)\n" }.joined()
  }

  /// Tables in the order Istio's native layout lists them.
  package static let tableOrder: [NetfilterTable] = [.nat, .mangle, .raw]

  /// The rules of one chain in kernel order, including the IPv4-only guard on base chains.
  package static func rules(_ ruleset: Ruleset, table: NetfilterTable, chain: Chain) -> [ChainRule] {
    var result: [ChainRule] = []
    if chain.isBuiltin && !ruleset.families.contains(.v6) {
      result.append(
        ChainRule(
          id: ipv4OnlyGuardID, text: "meta nfproto ipv6 counter return comment \"\(ipv4OnlyGuardID)\""))
    }
    for rule in ruleset.finalOrder(table: table, chain: chain) {
      let id = RuleIdentity.id(of: rule)
      result.append(ChainRule(id: id, text: "\(body(of: rule)) comment \"\(id)\""))
    }
    return result
  }

  package static func baseChainSpec(_ table: NetfilterTable, _ chain: Chain) -> String {
    let hook = chain == .prerouting ? "prerouting" : "output"
    switch table {
    case .nat: return "type nat hook \(hook) priority -100 ;"
    case .mangle: return "type \(chain == .output ? "route" : "filter") hook \(hook) priority -150 ;"
    case .raw: return "type filter hook \(hook) priority -300 ;"
    }
  }

  /// The match, counter and verdict part of a rule.
  package static func body(of rule: Rule) -> String {
    var parts: [String] = []
    if let family = rule.family, !rule.matches.contains(where: { $0.family != nil }) {
      parts.append("meta nfproto \(family == .v4 ? "ipv4" : "ipv6")")
    }
    for match in rule.matches {
      switch match {
      case .inInterface(let name, let negated): parts.append("iifname \(op(negated))\(interface(name))")
      case .outInterface(let name, let negated): parts.append("oifname \(op(negated))\(interface(name))")
      case .source(let cidr, let negated):
        parts.append("\(cidr.family == .v4 ? "ip" : "ip6") saddr \(op(negated))\(cidr)")
      case .destination(let cidr, let negated):
        parts.append("\(cidr.family == .v4 ? "ip" : "ip6") daddr \(op(negated))\(cidr)")
      case .l4(let proto): parts.append("meta l4proto \(proto.rawValue)")
      case .destinationPorts(let proto, let ports, let negated):
        let value = ports.count == 1 ? "\(ports[0])" : "{ \(ports.map(String.init).joined(separator: ", ")) }"
        parts.append("\(proto.rawValue) dport \(op(negated))\(value)")
      case .sourcePort(let proto, let port): parts.append("\(proto.rawValue) sport \(port)")
      case .uidOwner(let id, let negated): parts.append("meta skuid \(op(negated))\(id)")
      case .gidOwner(let id, let negated): parts.append("meta skgid \(op(negated))\(id)")
      case .conntrackState(let states):
        parts.append("ct state \(states.map { $0.lowercased() }.joined(separator: ","))")
      case .mark(let mark, let negated): parts.append("meta mark \(op(negated))\(mark)")
      case .connmark(let mark): parts.append("ct mark \(mark)")
      }
    }
    parts.append("counter")
    switch rule.action {
    case .jump(let chain): parts.append("jump \(chain.nftName)")
    case .return: parts.append("return")
    case .accept: parts.append("accept")
    case .drop: parts.append("drop")
    case .redirect(let port): parts.append("redirect to :\(port)")
    case .tproxy(let port, let mark):
      parts.append("tproxy \(rule.family == .v6 ? "ip6" : "ip") to :\(port) meta mark set \(mark) accept")
    case .setMark(let mark): parts.append("meta mark set \(mark)")
    case .conntrackZone(let zone): parts.append("ct zone set \(zone)")
    case .saveMarkToConnmark: parts.append("ct mark set meta mark")
    case .restoreMarkFromConnmark: parts.append("meta mark set ct mark")
    }
    return parts.joined(separator: " ")
  }

  private static func op(_ negated: Bool) -> String { negated ? "!= " : "" }

  /// iptables' `eth+` wildcard is nft's `"eth*"`; names are always quoted.
  private static func interface(_ name: String) -> String {
    let translated = name.hasSuffix("+") ? String(name.dropLast()) + "*" : name
    return "\"\(translated)\""
  }
}
