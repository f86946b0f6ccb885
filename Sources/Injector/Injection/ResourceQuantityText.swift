/// Recognises Kubernetes resource quantities (`100m`, `128Mi`, `2`, `1.5G`, `5e3`), the grammar of
/// `k8s.io/apimachinery/pkg/api/resource`:
///
///     quantity  ::= number suffix
///     number    ::= [+-]? ( digits | digits "." digits? | "." digits )
///     suffix    ::= "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
///                 | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
///                 | ("e" | "E") [+-]? digits
///
/// Invariant: pure syntax; a negative quantity is refused as well, since no proxy resource can be negative.
enum ResourceQuantityText {
  static func isValid(_ text: String) -> Bool {
    var rest = Substring(text)
    if rest.first == "+" { rest = rest.dropFirst() }
    if rest.first == "-" { return false }
    let whole = rest.prefix(while: { $0.isASCII && $0.isNumber })
    rest = rest.dropFirst(whole.count)
    var fraction: Substring = ""
    if rest.first == "." {
      rest = rest.dropFirst()
      fraction = rest.prefix(while: { $0.isASCII && $0.isNumber })
      rest = rest.dropFirst(fraction.count)
    }
    guard !whole.isEmpty || !fraction.isEmpty else { return false }
    switch rest {
    case "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
      return true
    default:
      guard rest.first == "e" || rest.first == "E" else { return false }
      var exponent = rest.dropFirst()
      if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
      return !exponent.isEmpty && exponent.allSatisfy { $0.isASCII && $0.isNumber }
    }
  }
}
