/// The value grammars of injection annotations, each check throwing an error that names the annotation.
///
/// Invariant: a check either returns the parsed value or throws `InjectionError(.invalidAnnotation, ...)`
/// whose message has the form `annotation <name>: "<value>" <problem>`; lists are comma separated, items
/// may carry spaces around them (as `pilotfish istio-iptables` accepts), and an empty list is valid.
enum AnnotationRules {
  /// Go's `strconv.ParseBool`: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
  static func bool(_ value: String) -> Bool? {
    switch value {
    case "1", "t", "T", "TRUE", "true", "True": return true
    case "0", "f", "F", "FALSE", "false", "False": return false
    default: return nil
    }
  }

  static func bool(_ name: String, _ value: String) throws(InjectionError) -> Bool {
    guard let result = bool(value) else { throw .annotation(name, value, "is not a boolean (true or false)") }
    return result
  }

  /// A decimal 0...4294967295, without sign or spaces (Go's `strconv.ParseUint(v, 10, 32)`).
  static func uint32(_ name: String, _ value: String) throws(InjectionError) -> Int {
    guard !value.isEmpty, value.utf8.count <= 10, value.allSatisfy({ $0.isASCII && $0.isNumber }),
      let number = Int(value), number <= Int(UInt32.max)
    else { throw .annotation(name, value, "is not an unsigned 32-bit integer") }
    return number
  }

  /// A port 0...65535 (0 turns the status server's probes off).
  static func statusPort(_ name: String, _ value: String) throws(InjectionError) -> Int {
    let text = trim(value)
    guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
      let port = Int(text),
      port <= 65535
    else { throw .annotation(name, value, "is not a port number (0-65535)") }
    return port
  }

  /// A comma-separated list of ports 1...65535; `*` too when `allowStar`.
  static func portList(_ name: String, _ value: String, allowStar: Bool = false) throws(InjectionError) {
    if allowStar && trim(value) == "*" { return }
    try each(name, value) { item throws(InjectionError) in
      guard !item.isEmpty, item.count <= 5, item.allSatisfy({ $0.isASCII && $0.isNumber }),
        let port = Int(item),
        (1...65535).contains(port)
      else { throw .item(name, value, item, "is not a port number (1-65535)") }
    }
  }

  /// A comma-separated list of IPv4/IPv6 CIDRs; `*` too when `allowStar`.
  static func cidrList(_ name: String, _ value: String, allowStar: Bool) throws(InjectionError) {
    if allowStar && trim(value) == "*" { return }
    try each(name, value) { item throws(InjectionError) in
      guard IPPrefixText.isPrefix(Substring(item)) else { throw .item(name, value, item, "is not a CIDR") }
    }
  }

  /// A comma-separated list of network interface names (1-15 characters, letters, digits, `-_.@+`).
  static func interfaceList(_ name: String, _ value: String) throws(InjectionError) {
    try each(name, value) { item throws(InjectionError) in
      let valid =
        (1...15).contains(item.utf8.count)
        && item.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@+".contains($0)) }
      guard valid else { throw .item(name, value, item, "is not a network interface name") }
    }
  }

  /// A Kubernetes resource quantity.
  static func quantity(_ name: String, _ value: String) throws(InjectionError) {
    guard ResourceQuantityText.isValid(value) else {
      throw .annotation(name, value, "is not a resource quantity (e.g. 100m, 2, 128Mi, 1Gi)")
    }
  }

  /// `text` without leading and trailing spaces and tabs.
  static func trim(_ text: some StringProtocol) -> String {
    var view = Substring(text)
    while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
    while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
    return String(view)
  }

  /// Calls `check` on every trimmed item of a non-empty comma-separated list.
  private static func each(
    _ name: String, _ value: String, _ check: (String) throws(InjectionError) -> Void
  ) throws(InjectionError) {
    guard !trim(value).isEmpty else { return }
    for item in value.split(separator: ",", omittingEmptySubsequences: false) {
      try check(trim(String(item)))
    }
  }
}

extension InjectionError {
  /// `annotation <name>: "<item>" is ...` for a one-item value, else `... "<item>" in "<value>" is ...`.
  static func item(_ name: String, _ value: String, _ item: String, _ problem: String) -> InjectionError {
    if item == AnnotationRules.trim(value) { return .annotation(name, value, problem) }
    return InjectionError(
      .invalidAnnotation, "annotation \(name): \(quoted(item)) in \(quoted(value)) \(problem)")
  }
}
