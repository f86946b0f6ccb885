/// An ordered set of rules for one capture configuration: the pure output of `RuleBuilder`.
///
/// `rules` keeps emission order (Istio's order, with `-I` positions); `finalOrder(table:chain:family:)` is
/// the order the kernel ends up with, which is what native nftables renders and what idempotency compares.
package struct Ruleset: Sendable, Equatable {
  /// Families the rules are installed for (IPv4 always; IPv6 when enabled and the kernel has it).
  package var families: [IPFamily]
  package private(set) var rules: [Rule] = []

  package init(families: [IPFamily]) {
    self.families = families
  }

  package mutating func append(_ rule: Rule) {
    if let family = rule.family, !families.contains(family) { return }
    rules.append(rule)
  }

  package var isEmpty: Bool { rules.isEmpty }

  /// Tables that hold at least one rule for `family` (nil: for any family), sorted by name.
  package func tables(for family: IPFamily? = nil) -> [NetfilterTable] {
    let used = Set(rules.filter { family == nil || $0.applies(to: family!) }.map(\.table))
    return used.sorted()
  }

  /// Non-built-in chains of `table`, in order of first appearance (as a rule's chain or a jump target).
  package func customChains(in table: NetfilterTable, family: IPFamily? = nil) -> [Chain] {
    var seen: [Chain] = []
    for rule in rules where rule.table == table && (family == nil || rule.applies(to: family!)) {
      var candidates = [rule.chain]
      if case .jump(let target) = rule.action { candidates.append(target) }
      for chain in candidates where !chain.isBuiltin && !seen.contains(chain) { seen.append(chain) }
    }
    return seen
  }

  /// Built-in chains of `table` that hold rules for `family` (nil: any), PREROUTING before OUTPUT.
  package func builtinChains(in table: NetfilterTable, family: IPFamily? = nil) -> [Chain] {
    [Chain.prerouting, .output].filter { chain in
      rules.contains { $0.table == table && $0.chain == chain && (family == nil || $0.applies(to: family!)) }
    }
  }

  /// The order rules of one chain end up in once every append and insert has been applied.
  package func finalOrder(table: NetfilterTable, chain: Chain, family: IPFamily? = nil) -> [Rule] {
    var result: [Rule] = []
    for rule in rules where rule.table == table && rule.chain == chain {
      if let family, !rule.applies(to: family) { continue }
      if let position = rule.insertPosition {
        result.insert(rule, at: min(max(position - 1, 0), result.count))
      } else {
        result.append(rule)
      }
    }
    return result
  }
}
