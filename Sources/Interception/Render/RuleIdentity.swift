/// Every rule Pilotfish installs carries a comment `pf:<8 hex>` derived from the rule's content.
///
/// The comment is how Pilotfish recognises its own rules in a namespace it shares with others: idempotent
/// re-runs compare these ids chain by chain, cleanup removes exactly these rules, and `--dry-run` diffs them.
package enum RuleIdentity {
  package static let prefix = "pf:"

  /// A stable id for `rule`: FNV-1a over the table name and the rule's family-specific iptables form.
  package static func id(of rule: Rule) -> String {
    let text = "\(rule.table.rawValue) \(rule.chain.iptablesName) \(IptablesRenderer.body(of: rule))"
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash &*= 0x100_0000_01b3
    }
    let folded = UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
    let hex = String(folded, radix: 16)
    return prefix + String(repeating: "0", count: 8 - hex.count) + hex
  }

  /// Finds a `pf:xxxxxxxx` id inside a line of iptables-save or an nft comment.
  package static func find(in text: Substring) -> String? {
    guard let range = text.firstRange(of: prefix) else { return nil }
    let hex = text[range.upperBound...].prefix(8)
    guard hex.count == 8, hex.allSatisfy(\.isHexDigit) else { return nil }
    return prefix + hex
  }
}
