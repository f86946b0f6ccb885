/// An IP protocol family. Rules, routes and probes are either family-neutral or belong to one family.
package enum IPFamily: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case v4
  case v6

  package var description: String { self == .v4 ? "IPv4" : "IPv6" }
}
