internal import CNetfilter
internal import Glibc

/// What TPROXY needs from the routing layer: per family, a rule sending packets carrying `mark`
/// to `table`, and in `table` a local default route via `lo`; for IPv6 optionally the inbound
/// passthrough source address `::6/128` on `lo`.
///
/// Invariant: none beyond the types; `PolicyRouting` validates `mark` (non-zero) and `table`
/// (not 0, 253, 254 or 255) before touching the kernel. Repeated families count once.
package struct TProxyRouting: Sendable, Equatable {
  /// The fwmark the TPROXY rules set on intercepted packets (Istio: 1337).
  package var mark: UInt32
  /// The routing table holding the local default route (Istio: 133).
  package var table: UInt32
  /// The families to program, in order.
  package var families: [IPFamily]
  /// Add `::6/128` on `lo`; only meaningful when `.v6` is in `families`.
  package var ipv6PassthroughAddress: Bool
  /// The fwmark rule and local route per family (TPROXY). False for REDIRECT mode, which only needs the
  /// passthrough address.
  package var policyRoutes: Bool

  package init(
    mark: UInt32 = 1337, table: UInt32 = 133, families: [IPFamily], ipv6PassthroughAddress: Bool,
    policyRoutes: Bool = true
  ) {
    self.mark = mark
    self.table = table
    self.families = families
    self.ipv6PassthroughAddress = ipv6PassthroughAddress
    self.policyRoutes = policyRoutes
  }
}

/// Programs, removes and reads the TPROXY policy routing of the calling thread's network
/// namespace over rtnetlink (no `ip` binary involved).
///
/// Invariant: every operation is idempotent; `install` leaves the namespace either with every
/// piece present or as it found it; `remove` touches only entries that match a piece exactly.
package enum PolicyRouting {
  /// Programs every piece of `r`. Pieces already present are left alone. If a piece fails, the
  /// pieces this call added are removed again (in reverse order) before the error is thrown.
  package static func install(_ r: TProxyRouting) throws(InterceptionError) {
    try validate(r)
    var added: [Piece] = []
    for piece in pieces(r) {
      do {
        if try piece.apply(add: true, r) { added.append(piece) }
      } catch {
        throw rollingBack(added, r, after: error)
      }
    }
  }

  /// Removes every piece of `r` that is present, in reverse install order. Absent pieces are
  /// fine (they are looked up first, so removing nothing needs no privileges). A failing piece
  /// does not stop the others; the first failure is thrown at the end, naming the others too.
  package static func remove(_ r: TProxyRouting) throws(InterceptionError) {
    try validate(r)
    var failures: [(piece: Piece, error: InterceptionError)] = []
    for piece in pieces(r).reversed() {
      do {
        if try piece.exists(r) { _ = try piece.apply(add: false, r) }
      } catch {
        failures.append((piece, error))
      }
    }
    guard var first = failures.first?.error else { return }
    if failures.count > 1 {
      let others = failures.dropFirst().map { "'\($0.piece.command(verb: "del", r))'" }
      first.message += " Removing \(others.joined(separator: ", ")) failed as well."
    }
    throw first
  }

  /// One line per piece of `r` that is present now, e.g. "ip rule fwmark 1337 lookup 133 (IPv4)".
  package static func installedPieces(_ r: TProxyRouting) throws(InterceptionError) -> [String] {
    try validate(r)
    var lines: [String] = []
    for piece in pieces(r) {
      if try piece.exists(r) { lines.append(piece.presentLine(r)) }
    }
    return lines
  }

  /// The commands `install` is equivalent to, in order, for `--dry-run`,
  /// e.g. "ip -4 rule add fwmark 1337 lookup 133".
  package static func describe(_ r: TProxyRouting) -> [String] {
    pieces(r).map { $0.command(verb: "add", r) }
  }

  // MARK: - Pieces

  /// One kernel object. Install order: per family the rule, then the route; the IPv6 address last.
  private enum Piece: Equatable {
    case rule(IPFamily)
    case route(IPFamily)
    case passthroughAddress

    /// `::6`, the source address Istio uses for inbound passthrough traffic.
    static let passthroughBytes: [UInt8] = Array(repeating: 0, count: 15) + [6]
    static let passthroughPrefix: UInt8 = 128

    var family: IPFamily {
      switch self {
      case .rule(let f), .route(let f): f
      case .passthroughAddress: .v6
      }
    }

    /// The equivalent `ip` command, with `verb` "add" or "del".
    func command(verb: String, _ r: TProxyRouting) -> String {
      let flag = family == .v4 ? "-4" : "-6"
      switch self {
      case .rule: return "ip \(flag) rule \(verb) fwmark \(r.mark) lookup \(r.table)"
      case .route: return "ip \(flag) route \(verb) local \(defaultPrefix) dev lo table \(r.table)"
      case .passthroughAddress: return "ip -6 addr \(verb) ::6/128 dev lo"
      }
    }

    /// How `installedPieces` reports this piece.
    func presentLine(_ r: TProxyRouting) -> String {
      switch self {
      case .rule: "ip rule fwmark \(r.mark) lookup \(r.table) (\(family))"
      case .route: "ip route local \(defaultPrefix) dev lo table \(r.table) (\(family))"
      case .passthroughAddress: "ip addr ::6/128 dev lo (IPv6)"
      }
    }

    /// Short noun phrase for messages.
    func summary(_ r: TProxyRouting) -> String {
      switch self {
      case .rule: "the \(family) rule 'fwmark \(r.mark) lookup \(r.table)'"
      case .route: "the \(family) route 'local \(defaultPrefix) dev lo table \(r.table)'"
      case .passthroughAddress: "the IPv6 passthrough address ::6/128 on lo"
      }
    }

    private var defaultPrefix: String { family == .v4 ? "0.0.0.0/0" : "::/0" }

    /// Adds or deletes the piece. Returns whether the kernel state changed.
    func apply(add: Bool, _ r: TProxyRouting) throws(InterceptionError) -> Bool {
      let verb: Verb = add ? .add : .delete
      let flag: Int32 = add ? 1 : 0
      let af = family.addressFamily
      let (rc, text) = withErrorBuffer { buf, len -> Int32 in
        switch self {
        case .rule: pf_nl_rule(flag, af, r.mark, r.table, buf, len)
        case .route: pf_nl_local_default_route(flag, af, r.table, buf, len)
        case .passthroughAddress:
          Piece.passthroughBytes.withUnsafeBytes {
            pf_nl_loopback_address(flag, af, $0.baseAddress, Piece.passthroughPrefix, buf, len)
          }
        }
      }
      if rc < 0 { throw PolicyRouting.error(-rc, detail: text, verb: verb, piece: self, r) }
      return rc == PF_NL_CHANGED
    }

    /// Whether the piece is present in the kernel now.
    func exists(_ r: TProxyRouting) throws(InterceptionError) -> Bool {
      let af = family.addressFamily
      let (rc, text) = withErrorBuffer { buf, len -> Int32 in
        switch self {
        case .rule: pf_nl_rule_exists(af, r.mark, r.table, buf, len)
        case .route: pf_nl_local_default_route_exists(af, r.table, buf, len)
        case .passthroughAddress:
          Piece.passthroughBytes.withUnsafeBytes {
            pf_nl_loopback_address_exists(af, $0.baseAddress, Piece.passthroughPrefix, buf, len)
          }
        }
      }
      if rc < 0 { throw PolicyRouting.error(-rc, detail: text, verb: .read, piece: self, r) }
      return rc == 1
    }
  }

  private static func pieces(_ r: TProxyRouting) -> [Piece] {
    var seen: Set<IPFamily> = []
    var result: [Piece] = []
    for family in r.families where seen.insert(family).inserted && r.policyRoutes {
      result += [.rule(family), .route(family)]
    }
    if r.ipv6PassthroughAddress && seen.contains(.v6) { result.append(.passthroughAddress) }
    return result
  }

  // MARK: - Validation, rollback, errors

  private static func validate(_ r: TProxyRouting) throws(InterceptionError) {
    if r.mark == 0 {
      throw InterceptionError(
        .invalidArgument,
        "TPROXY fwmark 0 is not usable: a rule 'fwmark 0 lookup \(r.table)' would send every unmarked "
          + "packet to table \(r.table). Configure a non-zero mark (Istio uses 1337).")
    }
    let reserved: [UInt32: String] = [0: "unspec", 253: "default", 254: "main", 255: "local"]
    if let name = reserved[r.table] {
      throw InterceptionError(
        .invalidArgument,
        "Routing table \(r.table) ('\(name)') is reserved by the kernel; a local default route "
          + "there would capture all traffic of the namespace. Configure a table of its own for "
          + "TPROXY (Istio uses 133).")
    }
  }

  /// Removes `added` in reverse order and returns `failure`, extended with any rollback failure
  /// and the commands to clean up by hand.
  private static func rollingBack(
    _ added: [Piece], _ r: TProxyRouting, after failure: InterceptionError
  ) -> InterceptionError {
    var leftovers: [String] = []
    for piece in added.reversed() {
      do {
        _ = try piece.apply(add: false, r)
      } catch {
        leftovers.append("\(piece.command(verb: "del", r)) (\(error.message))")
      }
    }
    var result = failure
    if added.isEmpty {
      result.message += " Nothing was changed."
    } else if leftovers.isEmpty {
      let entries =
        added.count == 1
        ? "The routing entry added before the failure was"
        : "The \(added.count) routing entries added before the failure were"
      result.message += " \(entries) removed again."
    } else {
      result.message +=
        " Rolling back failed too; remove the leftovers by hand: " + leftovers.joined(separator: "; ")
    }
    return result
  }

  private enum Verb {
    case add, delete, read

    var infinitive: String {
      switch self {
      case .add: "add"
      case .delete: "remove"
      case .read: "read"
      }
    }
  }

  /// Turns a kernel refusal into an operator-facing error. `detail` is the C layer's text, e.g.
  /// "RTM_NEWRULE fwmark 1337 table 133 (IPv6): Operation not permitted".
  private static func error(
    _ code: Int32, detail: String, verb: Verb, piece: Piece, _ r: TProxyRouting
  ) -> InterceptionError {
    let what = "Cannot \(verb.infinitive) \(piece.summary(r)) [\(detail)]"
    let inspect = piece.family == .v4 ? "ip -4" : "ip -6"
    switch code {
    case EPERM:
      return InterceptionError(
        .unsupported,
        "\(what): the process lacks CAP_NET_ADMIN in this network namespace. Run pilotfish as root "
          + "or grant it NET_ADMIN (Kubernetes: securityContext.capabilities.add: [\"NET_ADMIN\"]).")
    case EAFNOSUPPORT:
      return InterceptionError(
        .unsupported,
        "\(what): IPv6 is disabled in the kernel (ipv6.disable=1 or no IPv6 support). Intercept "
          + "IPv4 only, or enable IPv6 on the node.")
    case EACCES where piece.family == .v6:
      return InterceptionError(
        .unsupported,
        "\(what): IPv6 is disabled on lo in this network namespace (net.ipv6.conf.lo.disable_ipv6=1"
          + " or net.ipv6.conf.all.disable_ipv6=1). Intercept IPv4 only, or set those sysctls to 0.")
    case EACCES:
      return InterceptionError(
        .unsupported,
        "\(what): permission denied; the process lacks CAP_NET_ADMIN or a security module (SELinux, "
          + "AppArmor, seccomp) forbids routing changes. Run pilotfish with NET_ADMIN and check the "
          + "pod's security profile.")
    case ENETDOWN:
      return InterceptionError(
        .netlink,
        "\(what): the loopback interface is down in this network namespace. Bring it up "
          + "(ip link set lo up) and retry.")
    case EEXIST:
      let show =
        switch piece {
        case .rule: "\(inspect) rule show"
        case .route: "\(inspect) route show table \(r.table)"
        case .passthroughAddress: "ip -6 addr show dev lo"
        }
      return InterceptionError(
        .netlink,
        "\(what): a conflicting entry is in the way. Inspect it with '\(show)', then remove it "
          + "or configure another routing table for TPROXY.")
    default:
      let code: InterceptionError.Code = verb == .read ? .stateUnreadable : .netlink
      return InterceptionError(
        code,
        "\(what). Inspect the current state with '\(inspect) rule show' and '\(inspect) route show "
          + "table \(r.table)', remove stray entries with 'ip ... del', and retry.")
    }
  }
}

extension IPFamily {
  /// AF_INET or AF_INET6.
  fileprivate var addressFamily: Int32 { self == .v4 ? AF_INET : AF_INET6 }
}

/// Calls `body` with a zeroed C error buffer and returns its result with the buffer's text.
private func withErrorBuffer(
  _ body: (UnsafeMutablePointer<CChar>?, Int) -> Int32
) -> (Int32, String) {
  var buffer = [CChar](repeating: 0, count: 512)
  let rc = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress, $0.count) }
  let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
  return (rc, String(decoding: bytes, as: UTF8.self))
}
