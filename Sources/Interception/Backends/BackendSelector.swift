internal import Foundation

/// Picks the backend for `--backend auto` from the namespace's state and the kernel's capability, never from
/// which binaries happen to be installed (the cause of istio#49279, #57199 and #57380).
///
/// Order: (1) the backend already holding Pilotfish's rules, so a re-run replaces them in place; (2) legacy
/// iptables when it already holds NAT or mangle rules here, because native rules beside legacy ones race them;
/// (3) iptables-nft when ISTIO_* chains made by istio-init are there, so they are replaced, not doubled;
/// (4) native nftables when the kernel accepts an `inet` NAT chain (checked by the kernel, nothing committed);
/// (5) iptables-legacy when only x_tables NAT works.
package struct BackendSelector: Sendable {
  package struct Decision: Sendable {
    package var backend: BackendKind
    package var reason: String
  }

  package var families: [IPFamily]

  package init(families: [IPFamily]) {
    self.families = families
  }

  package func choose() throws(InterceptionError) -> Decision {
    let nftTables = (try? NftContext.tables()) ?? []
    if nftTables.contains(where: { t in NetfilterTable.allCases.contains { "inet \($0.nftName)" == t } }) {
      return Decision(backend: .nftables, reason: "Pilotfish's nftables tables are already installed")
    }
    if let legacy = legacyUse() {
      return Decision(backend: .iptablesLegacy, reason: legacy)
    }
    if let nftIstio = iptablesNftIstioChains(nftTables) {
      return Decision(backend: .iptablesNft, reason: nftIstio)
    }
    let nftProblem = NftablesBackend.probeNAT()
    if nftProblem == nil {
      return Decision(backend: .nftables, reason: "the kernel accepts nf_tables NAT chains")
    }
    let legacyProblem = legacyNATProblem()
    if legacyProblem == nil {
      return Decision(
        backend: .iptablesLegacy, reason: "nf_tables NAT is unavailable (\(nftProblem!)); x_tables NAT works")
    }
    throw InterceptionError(
      .unsupported,
      "no usable netfilter backend in this namespace: nf_tables NAT: \(nftProblem!); iptables-legacy NAT: \(legacyProblem!)"
    )
  }

  /// Whether legacy x_tables already hold rules in the tables Pilotfish uses (read from /proc, and from
  /// iptables-legacy-save when it is installed).
  func legacyUse() -> String? {
    for family in families {
      let file = family == .v4 ? "/proc/thread-self/net/ip_tables_names" : "/proc/thread-self/net/ip6_tables_names"
      let names = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
      let used = names.filter { ["nat", "mangle", "raw"].contains($0) }
      guard !used.isEmpty else { continue }
      let backend = IptablesBackend(flavor: .legacy)
      guard let path = Command.find(backend.tool(family, "save")),
        let saved = try? Command.run(path, []), saved.status == 0
      else {
        return "legacy x_tables (\(used.joined(separator: ", "))) are in use here and cannot be inspected"
      }
      let rules = saved.output.split(separator: "\n").filter { $0.hasPrefix("-A ") }
      if !rules.isEmpty {
        return "legacy iptables already holds \(rules.count) rule(s) in this namespace (\(family))"
      }
    }
    return nil
  }

  func iptablesNftIstioChains(_ tables: [String]) -> String? {
    for table in tables where table.hasPrefix("ip ") || table.hasPrefix("ip6 ") {
      guard ["nat", "mangle", "raw"].contains(table.split(separator: " ").last ?? "") else { continue }
      if let chains = try? NftContext.chains(of: table),
        chains.contains(where: { $0.chain.hasPrefix("ISTIO_") })
      {
        return "iptables-nft already holds ISTIO_* chains (table \(table))"
      }
    }
    return nil
  }

  func legacyNATProblem() -> String? {
    let backend = IptablesBackend(flavor: .legacy)
    guard let path = Command.find(backend.tool(.v4, "restore")) else {
      return "\(backend.tool(.v4, "restore")) is not installed"
    }
    guard let result = try? Command.run(path, ["--noflush", "--test"], input: "*nat\nCOMMIT\n") else {
      return "could not run \(path)"
    }
    return result.status == 0 ? nil : IptablesBackend.explain(result.error)
  }
}
