/// Native nftables through libnftables (no `nft` binary): Pilotfish's own `inet` tables
/// `pilotfish-nat`, `pilotfish-mangle` and `pilotfish-raw`, replaced in one atomic transaction.
package struct NftablesBackend: InterceptionBackend {
  package var kind: BackendKind { .nftables }

  package init() {}

  package func mayHoldRules(families: [IPFamily]) -> Bool {
    let tables = (try? NftContext.tables()) ?? []
    return NetfilterTable.allCases.contains { tables.contains("inet \($0.nftName)") }
  }

  package func installedState(families: [IPFamily]) throws(InterceptionError) -> InstalledState {
    var state = InstalledState()
    let present: [String]
    do {
      present = try NftContext.tables()
    } catch {
      throw InterceptionError(.stateUnreadable, "cannot list nftables tables: \(Self.explain(error.message))")
    }
    for table in NetfilterTable.allCases where present.contains("inet \(table.nftName)") {
      let listing: [(chain: String, rules: [String])]
      do {
        listing = try NftContext.chains(of: "inet \(table.nftName)")
      } catch {
        throw InterceptionError(
          .stateUnreadable, "cannot list nftables table inet \(table.nftName): \(Self.explain(error.message))"
        )
      }
      for (chainName, rules) in listing {
        guard let chain = Chain.allCases.first(where: { $0.nftName == chainName }) else { continue }
        let key = ChainKey(family: nil, table: table, chain: chain)
        state.chains[key] = []
        for rule in rules {
          let id = RuleIdentity.find(in: rule[...]) ?? "?"
          state.chains[key]!.append(id)
          state.text[id] = rule
        }
      }
    }
    return state
  }

  package func plan(_ ruleset: Ruleset) -> ApplyPlan {
    var current: InstalledState?
    var reason: String?
    do {
      current = try installedState(families: ruleset.families)
    } catch {
      reason = error.message
    }
    var desired = InstalledState()
    for table in NftRenderer.tableOrder where ruleset.tables().contains(table) {
      for chain in ruleset.builtinChains(in: table) + ruleset.customChains(in: table) {
        let rules = NftRenderer.rules(ruleset, table: table, chain: chain)
        desired.chains[ChainKey(family: nil, table: table, chain: chain)] = rules.map(\.id)
        for rule in rules { desired.text[rule.id] = rule.text }
      }
    }
    return ApplyPlan(
      backend: kind,
      payloads: [("nft transaction (libnftables, one atomic batch)", NftRenderer.transaction(ruleset))],
      desired: desired, current: current, currentUnreadableReason: reason)
  }

  package func apply(_ plan: ApplyPlan) throws(InterceptionError) {
    for (_, text) in plan.payloads {
      do {
        _ = try NftContext.run(text)
      } catch {
        throw InterceptionError(
          .applyFailed,
          "nftables rejected the transaction; nothing was changed: \(Self.explain(error.message))")
      }
    }
  }

  /// Whether the kernel can create an `inet` NAT chain here: checked by the kernel, nothing is committed.
  package static func probeNAT() -> String? {
    let probe = """
      add table inet pilotfish-probe
      add chain inet pilotfish-probe output { type nat hook output priority -100 ; }
      add rule inet pilotfish-probe output meta l4proto tcp redirect to :15001
      """
    do {
      _ = try NftContext.run(probe, check: true)
      return nil
    } catch {
      return explain(error.message)
    }
  }

  /// Adds what to do to the kernel's terse errors.
  static func explain(_ message: String) -> String {
    let line = message.split(separator: "\n").first.map(String.init) ?? message
    if message.contains("Operation not permitted") {
      return "\(line) — the process lacks CAP_NET_ADMIN in this network namespace"
    }
    if message.contains("Protocol not supported")
      || message.contains("No such file or directory") && message.contains("nat")
    {
      return "\(line) — the kernel lacks nf_tables NAT support (modules nf_tables, nft_nat, nft_redir)"
    }
    return line.isEmpty ? "unknown libnftables error" : message
  }
}
