/// The netfilter tables Pilotfish writes to. In nftables each becomes an `inet` table owned by Pilotfish.
package enum NetfilterTable: String, Sendable, Hashable, CaseIterable, Comparable {
  case mangle
  case nat
  case raw

  /// Name of the `inet` table Pilotfish owns in native nftables mode.
  package var nftName: String { "pilotfish-\(rawValue)" }

  package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A chain: one of the two built-in hooks Pilotfish uses, or one of Istio's ISTIO_* chains.
package enum Chain: String, Sendable, Hashable, CaseIterable {
  case prerouting = "PREROUTING"
  case output = "OUTPUT"
  case inbound = "ISTIO_INBOUND"
  case inRedirect = "ISTIO_IN_REDIRECT"
  case outputChain = "ISTIO_OUTPUT"
  case outputDNS = "ISTIO_OUTPUT_DNS"
  case redirect = "ISTIO_REDIRECT"
  case divert = "ISTIO_DIVERT"
  case tproxy = "ISTIO_TPROXY"
  case drop = "ISTIO_DROP"

  package var iptablesName: String { rawValue }
  /// nft names follow Istio's native layout: lower case, dashes.
  package var nftName: String { String(rawValue.lowercased().map { $0 == "_" ? "-" : $0 }) }
  package var isBuiltin: Bool { self == .prerouting || self == .output }
}

package enum L4Protocol: String, Sendable, Hashable {
  case tcp
  case udp
}

/// One match of a rule. Rendered in the order the rule lists them, by both renderers.
package enum Match: Sendable, Hashable {
  case inInterface(String, negated: Bool)
  case outInterface(String, negated: Bool)
  case source(CIDR, negated: Bool)
  case destination(CIDR, negated: Bool)
  case l4(L4Protocol)
  /// One port or several (`-m multiport --dports` / an nft anonymous set).
  case destinationPorts(L4Protocol, [UInt16], negated: Bool)
  case sourcePort(L4Protocol, UInt16)
  case uidOwner(UInt32, negated: Bool)
  case gidOwner(UInt32, negated: Bool)
  case conntrackState([String])
  case mark(UInt32, negated: Bool)
  case connmark(UInt32)

  /// The family a match restricts its rule to, if any.
  var family: IPFamily? {
    switch self {
    case .source(let c, _), .destination(let c, _): c.family
    default: nil
    }
  }
}

/// What a rule does when it matches.
package enum Action: Sendable, Hashable {
  case jump(Chain)
  case `return`
  case accept
  case drop
  case redirect(toPort: UInt16)
  case tproxy(toPort: UInt16, mark: UInt32)
  case setMark(UInt32)
  case conntrackZone(UInt16)
  case saveMarkToConnmark
  case restoreMarkFromConnmark
}

/// One rule of the model: where it goes, what it matches, what it does, and for which family.
///
/// `family == nil` means the rule applies to both families (it holds no address); a rule with an address
/// match always names the address's family. `insertPosition` mirrors iptables `-I CHAIN N` (1-based);
/// nil appends.
package struct Rule: Sendable, Hashable {
  package var table: NetfilterTable
  package var chain: Chain
  package var matches: [Match]
  package var action: Action
  package var family: IPFamily?
  package var insertPosition: Int?

  package init(
    _ table: NetfilterTable, _ chain: Chain, _ matches: [Match] = [], _ action: Action,
    family: IPFamily? = nil, insertAt insertPosition: Int? = nil
  ) {
    self.table = table
    self.chain = chain
    self.matches = matches
    self.action = action
    self.family = family ?? matches.lazy.compactMap(\.family).first
    self.insertPosition = insertPosition
  }

  package func applies(to family: IPFamily) -> Bool { self.family == nil || self.family == family }
}
