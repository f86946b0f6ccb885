/// The three ways Pilotfish can program netfilter.
package enum BackendKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  /// Native nftables through libnftables, in-process: one atomic transaction for both families.
  case nftables
  /// `iptables-legacy-restore` / `ip6tables-legacy-restore` (x_tables).
  case iptablesLegacy = "iptables-legacy"
  /// `iptables-nft-restore` / `ip6tables-nft-restore` (iptables syntax over nf_tables).
  case iptablesNft = "iptables-nft"

  package var description: String { rawValue }
}

/// A chain's identity inside one backend's state. `family` is nil for nftables' `inet` tables.
package struct ChainKey: Sendable, Hashable, Comparable, CustomStringConvertible {
  package var family: IPFamily?
  package var table: NetfilterTable
  package var chain: Chain

  package static func < (a: Self, b: Self) -> Bool {
    (a.family?.rawValue ?? "", a.table.rawValue, a.chain.rawValue)
      < (b.family?.rawValue ?? "", b.table.rawValue, b.chain.rawValue)
  }

  package var description: String {
    let prefix = family.map { "[\($0)] " } ?? ""
    return "\(prefix)\(table.rawValue) \(chain.iptablesName)"
  }
}

/// Pilotfish's rules as one backend sees them: per chain, the rule ids in kernel order, and the text of each
/// rule (for diffs). Rules without a Pilotfish id inside Pilotfish-owned chains appear as `?` entries.
package struct InstalledState: Sendable, Equatable {
  package var chains: [ChainKey: [String]] = [:]
  package var text: [String: String] = [:]

  package init() {}

  package var isEmpty: Bool { chains.values.allSatisfy(\.isEmpty) && chains.isEmpty }
  package var ruleCount: Int { chains.values.reduce(0) { $0 + $1.count } }
  package var hasTProxy: Bool { chains.keys.contains { $0.chain == .tproxy } }

  /// Human lines describing how `desired` differs from `self` (empty when they are equal).
  package func diff(to desired: InstalledState) -> [String] {
    var lines: [String] = []
    for key in Set(chains.keys).union(desired.chains.keys).sorted() {
      let now = chains[key] ?? []
      let want = desired.chains[key] ?? []
      if now == want { continue }
      let removed = now.filter { !want.contains($0) }
      let added = want.filter { !now.contains($0) }
      for id in removed { lines.append("- \(key): \(text[id] ?? id)") }
      for id in added { lines.append("+ \(key): \(desired.text[id] ?? id)") }
      if removed.isEmpty && added.isEmpty { lines.append("~ \(key): same rules, different order") }
    }
    return lines
  }
}

/// What applying a ruleset would do, for one backend: the exact payloads and the difference from now.
package struct ApplyPlan: Sendable {
  package var backend: BackendKind
  /// Each payload with a label ("nft transaction", "iptables-restore (IPv4)"), exactly as it will be applied.
  package var payloads: [(label: String, text: String)]
  /// The desired state, for idempotency and diffs.
  package var desired: InstalledState
  /// The state now, or nil when it could not be read (e.g. an unprivileged --dry-run).
  package var current: InstalledState?
  package var currentUnreadableReason: String?
  /// Per family, the backend's full saved state before the change, restored if a later family fails.
  package var snapshots: [IPFamily: String] = [:]

  package var upToDate: Bool { current?.chains == desired.chains }
  package var diff: [String] { current.map { $0.diff(to: desired) } ?? [] }
}

/// One way of programming netfilter. Implementations are stateless apart from what they read from the
/// kernel; `apply` either completes or leaves the namespace as it was.
package protocol InterceptionBackend: Sendable {
  var kind: BackendKind { get }
  /// Pilotfish's rules as installed now.
  func installedState(families: [IPFamily]) throws(InterceptionError) -> InstalledState
  /// Reads the current state and builds the payloads that replace Pilotfish's rules with `ruleset`.
  /// When the state cannot be read, `current` is nil and the payload is a fresh install.
  func plan(_ ruleset: Ruleset) -> ApplyPlan
  /// Applies a plan made by `plan(_:)`.
  func apply(_ plan: ApplyPlan) throws(InterceptionError)
  /// Removes every rule and chain Pilotfish installed through this backend; returns how many rules went.
  @discardableResult
  func removeAll(families: [IPFamily]) throws(InterceptionError) -> Int
  /// A cheap check, without running any tool or instantiating any table: could this backend hold rules here?
  func mayHoldRules(families: [IPFamily]) -> Bool
}

extension InterceptionBackend {
  /// Applies the empty ruleset: what every backend's cleanup starts with.
  @discardableResult
  package func removeAll(families: [IPFamily]) throws(InterceptionError) -> Int {
    try removeOwnedRules(families: families)
  }

  @discardableResult
  package func removeOwnedRules(families: [IPFamily]) throws(InterceptionError) -> Int {
    let plan = plan(Ruleset(families: families))
    guard let current = plan.current else {
      throw InterceptionError(.stateUnreadable, plan.currentUnreadableReason ?? "\(kind): state unreadable")
    }
    if current.chains.isEmpty { return 0 }
    try apply(plan)
    return current.ruleCount
  }
}
