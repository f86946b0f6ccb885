internal import Foundation

/// iptables-restore payloads, one per family, applied with `--noflush` so that rules of others survive;
/// legacy (x_tables) or nft flavour.
///
/// Ownership: every chain named ISTIO_* in the tables Pilotfish uses, and every rule in PREROUTING/OUTPUT that
/// carries a `pf:` comment or jumps to an ISTIO_* chain. A replacement deletes those built-in rules, empties the
/// chains, adds the new rules and deletes chains no longer needed, all in one restore per family. Every payload
/// is checked with `--test` first; if a later family fails, the earlier one is restored from its snapshot.
package struct IptablesBackend: InterceptionBackend {
  package enum Flavor: String, Sendable {
    case legacy
    case nft
  }

  package let flavor: Flavor

  package init(flavor: Flavor) {
    self.flavor = flavor
  }

  package func mayHoldRules(families: [IPFamily]) -> Bool {
    switch flavor {
    case .legacy:
      return families.contains { family in
        let file = family == .v4 ? "/proc/thread-self/net/ip_tables_names" : "/proc/thread-self/net/ip6_tables_names"
        return !(((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").isEmpty)
      }
    case .nft:
      let tables = (try? NftContext.tables()) ?? []
      return tables.contains { $0.hasPrefix("ip ") || $0.hasPrefix("ip6 ") }
    }
  }

  package var kind: BackendKind { flavor == .legacy ? .iptablesLegacy : .iptablesNft }

  package func tool(_ family: IPFamily, _ verb: String) -> String {
    "\(family == .v4 ? "iptables" : "ip6tables")-\(flavor.rawValue)-\(verb)"
  }

  /// What one family's `*-save` output says Pilotfish owns.
  struct Snapshot {
    var text = ""
    var state = InstalledState()
    /// Per table, the owned rules in built-in chains exactly as saved (`-A CHAIN ...`).
    var builtinLines: [NetfilterTable: [String]] = [:]
    /// Per table, the ISTIO_* chains that exist.
    var chains: [NetfilterTable: [Chain]] = [:]
  }

  func snapshot(_ family: IPFamily) throws(InterceptionError) -> Snapshot {
    let name = tool(family, "save")
    let path = try locate(name)
    let result: Command.Result
    do {
      result = try Command.run(path, [])
    } catch {
      throw InterceptionError(.stateUnreadable, "could not run \(name)", cause: error)
    }
    guard result.status == 0 else {
      throw InterceptionError(
        .stateUnreadable, "\(name) failed (exit \(result.status)): \(Self.firstLine(result.error))")
    }
    return Self.parse(result.output, family: family)
  }

  static func parse(_ text: String, family: IPFamily) -> Snapshot {
    var snap = Snapshot()
    snap.text = text
    var table: NetfilterTable?
    for raw in text.split(separator: "\n") {
      let line = String(raw)
      if line.hasPrefix("*") {
        table = NetfilterTable(rawValue: String(line.dropFirst()))
        continue
      }
      guard let table else { continue }
      if line.hasPrefix(":") {
        let name = line.dropFirst().split(separator: " ").first.map(String.init) ?? ""
        if let chain = Chain(rawValue: name), !chain.isBuiltin {
          snap.chains[table, default: []].append(chain)
          snap.state.chains[ChainKey(family: family, table: table, chain: chain)] = []
        }
        continue
      }
      guard line.hasPrefix("-A ") else { continue }
      let words = line.split(separator: " ")
      guard words.count > 1, let chain = Chain(rawValue: String(words[1])) else { continue }
      let id = RuleIdentity.find(in: line[...])
      if chain.isBuiltin {
        guard id != nil || line.contains("-j ISTIO_") else { continue }
        snap.builtinLines[table, default: []].append(line)
      }
      let key = ChainKey(family: family, table: table, chain: chain)
      snap.state.chains[key, default: []].append(id ?? "?")
      snap.state.text[id ?? "?"] = line
    }
    return snap
  }

  package func installedState(families: [IPFamily]) throws(InterceptionError) -> InstalledState {
    var state = InstalledState()
    for family in families {
      let snap = try snapshot(family)
      state.chains.merge(snap.state.chains) { $1 }
      state.text.merge(snap.state.text) { $1 }
    }
    return state
  }

  package func plan(_ ruleset: Ruleset) -> ApplyPlan {
    var desired = InstalledState()
    for family in ruleset.families {
      for table in ruleset.tables(for: family) {
        for chain in ruleset.builtinChains(in: table, family: family)
          + ruleset.customChains(in: table, family: family)
        {
          let rules = ruleset.finalOrder(table: table, chain: chain, family: family)
          desired.chains[ChainKey(family: family, table: table, chain: chain)] = rules.map(
            RuleIdentity.id(of:))
          for rule in rules { desired.text[RuleIdentity.id(of: rule)] = IptablesRenderer.line(rule) }
        }
      }
    }
    var plan = ApplyPlan(backend: kind, payloads: [], desired: desired, current: InstalledState())
    for family in ruleset.families {
      do {
        let snap = try snapshot(family)
        plan.current?.chains.merge(snap.state.chains) { $1 }
        plan.current?.text.merge(snap.state.text) { $1 }
        plan.snapshots[family] = snap.text
        let payload = Self.replacement(ruleset, family: family, replacing: snap)
        if !payload.isEmpty { plan.payloads.append(("\(tool(family, "restore")) --noflush", payload)) }
      } catch {
        plan.current = nil
        plan.currentUnreadableReason = error.message
        let payload = IptablesRenderer.payload(ruleset, family: family)
        if !payload.isEmpty { plan.payloads.append(("\(tool(family, "restore")) --noflush", payload)) }
      }
    }
    return plan
  }

  /// The restore payload that replaces what `snap` shows of Pilotfish with `ruleset`, table by table.
  static func replacement(_ ruleset: Ruleset, family: IPFamily, replacing snap: Snapshot) -> String {
    let tables = Set(ruleset.tables(for: family)).union(snap.chains.keys).union(snap.builtinLines.keys)
      .sorted()
    var out = ""
    for table in tables {
      let wanted = ruleset.customChains(in: table, family: family)
      let existing = snap.chains[table] ?? []
      out += "*\(table.rawValue)\n"
      for chain in wanted + existing.filter({ !wanted.contains($0) }) {
        out += ":\(chain.iptablesName) - [0:0]\n"
      }
      for line in snap.builtinLines[table] ?? [] { out += "-D" + line.dropFirst(2) + "\n" }
      for rule in ruleset.rules where rule.table == table && rule.applies(to: family) {
        out += IptablesRenderer.line(rule) + "\n"
      }
      for chain in existing where !wanted.contains(chain) { out += "-X \(chain.iptablesName)\n" }
      out += "COMMIT\n"
    }
    return out
  }

  package func apply(_ plan: ApplyPlan) throws(InterceptionError) {
    if plan.current == nil, let reason = plan.currentUnreadableReason {
      throw InterceptionError(.stateUnreadable, reason)
    }
    // Which family each payload is for, from its label.
    let work: [(IPFamily, String)] = plan.payloads.map { ($0.label.hasPrefix("ip6") ? .v6 : .v4, $0.text) }
    for (family, payload) in work {
      try restore(family, payload, arguments: ["--noflush", "--test"])
    }
    var applied: [IPFamily] = []
    for (family, payload) in work {
      do {
        try restore(family, payload, arguments: ["--noflush"])
        applied.append(family)
      } catch {
        for done in applied {
          if let previous = plan.snapshots[done] { try? restore(done, previous, arguments: []) }
        }
        throw error
      }
    }
  }

  /// Cleanup, plus (nft flavour) the empty built-in tables iptables-nft creates on first use: a table with no
  /// rule and only accept-policy built-in chains does nothing, and leaving it would not restore the namespace.
  @discardableResult
  package func removeAll(families: [IPFamily]) throws(InterceptionError) -> Int {
    let removed = try removeOwnedRules(families: families)
    guard removed > 0, flavor == .nft else { return removed }
    let builtin: Set<String> = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
    for family in families {
      for table in NetfilterTable.allCases {
        let name = "\(family == .v4 ? "ip" : "ip6") \(table.rawValue)"
        guard let listing = try? NftContext.run("list table \(name)"),
          let chains = try? NftContext.chains(of: name),
          chains.allSatisfy({ builtin.contains($0.chain) && $0.rules.isEmpty }),
          !listing.contains("policy drop")
        else { continue }
        _ = try? NftContext.run("delete table \(name)")
      }
    }
    return removed
  }

  private func restore(_ family: IPFamily, _ payload: String, arguments: [String]) throws(InterceptionError) {
    let name = tool(family, "restore")
    let path = try locate(name)
    let result: Command.Result
    do {
      result = try Command.run(path, ["--wait", "5"] + arguments, input: payload)
    } catch {
      throw InterceptionError(.applyFailed, "could not run \(name)", cause: error)
    }
    guard result.status == 0 else {
      let testing = arguments.contains("--test") ? " (checked with --test; nothing was applied)" : ""
      throw InterceptionError(
        .applyFailed, "\(name) rejected the rules\(testing): \(Self.explain(result.error))")
    }
  }

  /// The path of an iptables tool, or an error saying how to get it.
  private func locate(_ name: String) throws(InterceptionError) -> String {
    guard let path = Command.find(name) else {
      throw InterceptionError(
        .unsupported, "\(name) not found in PATH: install the iptables package or choose --backend nftables")
    }
    return path
  }

  static func firstLine(_ text: String) -> String {
    text.split(separator: "\n").first.map(String.init) ?? "no error text"
  }

  /// Adds what to do to iptables' terse errors.
  static func explain(_ text: String) -> String {
    let line = text.split(separator: "\n").filter { !$0.hasPrefix("Try `") }.joined(separator: "; ")
    if text.contains("Permission denied") || text.contains("Operation not permitted") {
      return "\(line) — the process lacks CAP_NET_ADMIN in this network namespace"
    }
    if text.contains("Table does not exist") || text.contains("can't initialize") {
      return "\(line) — the kernel lacks this table for this iptables flavour; try --backend nftables"
    }
    return line.isEmpty ? "no error text" : line
  }
}
