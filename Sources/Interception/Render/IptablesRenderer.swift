/// Renders a `Ruleset` as iptables-restore payloads, one per family, in Istio's order: tables sorted, chain
/// declarations first (order of first appearance), then the rules as emitted (`-A`, or `-I CHAIN N`).
///
/// Every rule carries `-m comment --comment pf:<id>` (see `RuleIdentity`). Chains are declared with
/// `:NAME - [0:0]`, which creates a chain or, under `--noflush`, empties an existing one.
package enum IptablesRenderer {
  /// The restore payload that installs `ruleset` for `family` from scratch (no deletions).
  package static func payload(_ ruleset: Ruleset, family: IPFamily) -> String {
    var out = ""
    for table in ruleset.tables(for: family) {
      out += "*\(table.rawValue)\n"
      for chain in ruleset.customChains(in: table, family: family) {
        out += ":\(chain.iptablesName) - [0:0]\n"
      }
      for rule in ruleset.rules where rule.table == table && rule.applies(to: family) {
        out += line(rule) + "\n"
      }
      out += "COMMIT\n"
    }
    return out
  }

  /// `-A CHAIN ...` or `-I CHAIN N ...` for one rule, with its identity comment.
  package static func line(_ rule: Rule) -> String {
    let verb =
      rule.insertPosition.map { "-I \(rule.chain.iptablesName) \($0)" } ?? "-A \(rule.chain.iptablesName)"
    return "\(verb) \(body(of: rule, comment: RuleIdentity.id(of: rule)))"
  }

  /// The match and target part of a rule, as iptables takes it.
  package static func body(of rule: Rule, comment: String? = nil) -> String {
    var parts: [String] = []
    var protocolNamed = false
    for match in rule.matches {
      switch match {
      case .inInterface(let name, let negated): parts.append("\(not(negated))-i \(name)")
      case .outInterface(let name, let negated): parts.append("\(not(negated))-o \(name)")
      case .source(let cidr, let negated): parts.append("\(not(negated))-s \(cidr)")
      case .destination(let cidr, let negated): parts.append("\(not(negated))-d \(cidr)")
      case .l4(let proto):
        parts.append("-p \(proto.rawValue)")
        protocolNamed = true
      case .destinationPorts(let proto, let ports, let negated):
        if !protocolNamed {
          parts.append("-p \(proto.rawValue)")
          protocolNamed = true
        }
        if ports.count == 1 {
          parts.append("\(not(negated))--dport \(ports[0])")
        } else {
          parts.append(
            "-m multiport \(not(negated))--dports \(ports.map(String.init).joined(separator: ","))")
        }
      case .sourcePort(let proto, let port):
        if !protocolNamed {
          parts.append("-p \(proto.rawValue)")
          protocolNamed = true
        }
        parts.append("--sport \(port)")
      case .uidOwner(let id, let negated): parts.append("-m owner \(not(negated))--uid-owner \(id)")
      case .gidOwner(let id, let negated): parts.append("-m owner \(not(negated))--gid-owner \(id)")
      case .conntrackState(let states):
        parts.append("-m conntrack --ctstate \(states.joined(separator: ","))")
      case .mark(let mark, let negated): parts.append("-m mark \(not(negated))--mark \(mark)")
      case .connmark(let mark): parts.append("-m connmark --mark \(mark)")
      }
    }
    if let comment { parts.append("-m comment --comment \(comment)") }
    parts.append(target(rule.action))
    return parts.joined(separator: " ")
  }

  private static func target(_ action: Action) -> String {
    switch action {
    case .jump(let chain): "-j \(chain.iptablesName)"
    case .return: "-j RETURN"
    case .accept: "-j ACCEPT"
    case .drop: "-j DROP"
    case .redirect(let port): "-j REDIRECT --to-ports \(port)"
    case .tproxy(let port, let mark): "-j TPROXY --tproxy-mark \(mark)/0xffffffff --on-port \(port)"
    case .setMark(let mark): "-j MARK --set-mark \(mark)"
    case .conntrackZone(let zone): "-j CT --zone \(zone)"
    case .saveMarkToConnmark: "-j CONNMARK --save-mark"
    case .restoreMarkFromConnmark: "-j CONNMARK --restore-mark"
    }
  }

  private static func not(_ negated: Bool) -> String { negated ? "! " : "" }
}
