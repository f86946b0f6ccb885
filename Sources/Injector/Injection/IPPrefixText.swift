/// Recognises the textual forms of IP addresses and CIDR prefixes, as Go's `netip.ParsePrefix` does.
///
/// Invariant: pure syntax, no allocation of address values: IPv4 is four decimal octets without leading
/// zeros, IPv6 is eight hex groups (or fewer with one `::`, optionally ending in an IPv4 quad) without a
/// zone, and the prefix length is decimal without leading zeros and no longer than the address.
enum IPPrefixText {
  /// `10.0.0.0/8`, `fd00::/8`, `::ffff:10.0.0.0/104`.
  static func isPrefix(_ text: Substring) -> Bool {
    guard let slash = text.firstIndex(of: "/") else { return false }
    let address = text[..<slash]
    let bits = text[text.index(after: slash)...]
    guard let length = decimal(bits, max: 128) else { return false }
    if isIPv4(address) { return length <= 32 }
    if isIPv6(address) { return length <= 128 }
    return false
  }

  static func isIPv4(_ text: Substring) -> Bool {
    let octets = text.split(separator: ".", omittingEmptySubsequences: false)
    return octets.count == 4 && octets.allSatisfy { decimal($0, max: 255) != nil }
  }

  static func isIPv6(_ text: Substring) -> Bool {
    guard !text.isEmpty, text.allSatisfy({ $0.isASCII }) else { return false }
    let halves = text.split(separator: "::", omittingEmptySubsequences: false)
    switch halves.count {
    case 1:
      guard let count = groupCount(halves[0], last: true) else { return false }
      return count == 8
    case 2:
      guard let left = groupCount(halves[0], last: false),
        let right = groupCount(halves[1], last: true)
      else { return false }
      return left + right <= 7
    default:
      return false
    }
  }

  /// The number of 16-bit groups in a colon-separated run (an empty run has none); an IPv4 quad counts
  /// two and is allowed only at the very end of the address (`last`).
  private static func groupCount(_ run: Substring, last: Bool) -> Int? {
    if run.isEmpty { return 0 }
    let groups = run.split(separator: ":", omittingEmptySubsequences: false)
    var count = 0
    for (index, group) in groups.enumerated() {
      if group.contains(".") {
        guard last, index == groups.count - 1, isIPv4(group) else { return nil }
        count += 2
      } else {
        guard (1...4).contains(group.count), group.allSatisfy({ $0.isHexDigit }) else { return nil }
        count += 1
      }
    }
    return count
  }

  /// A decimal number without sign or leading zeros, at most `max`.
  static func decimal(_ text: Substring, max: Int) -> Int? {
    guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    if text.count > 1 && text.first == "0" { return nil }
    guard let value = Int(text), value <= max else { return nil }
    return value
  }
}
