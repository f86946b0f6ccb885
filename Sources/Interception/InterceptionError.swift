/// The one error type of the interception domain.
///
/// `message` is written for an operator: it names what is wrong and where (flag, value, capability).
/// Equality ignores `cause`, so tests can compare errors.
package struct InterceptionError: Error, Sendable, Equatable, CustomStringConvertible {
  package enum Code: String, Sendable, Equatable {
    /// A flag or environment variable has a value that cannot be used.
    case invalidArgument
    /// The process lacks a capability (NET_ADMIN) or a kernel feature (nf_tables, nat, IPv6).
    case unsupported
    /// The kernel or a tool refused a transaction; nothing of it was applied.
    case applyFailed
    /// Reading the namespace's current state failed.
    case stateUnreadable
    /// `--run-validation` found that traffic does not reach the capture ports.
    case validationFailed
    /// A netlink request (ip rule / ip route / address) failed.
    case netlink
  }

  package var code: Code
  package var message: String
  package var cause: (any Error)?

  package init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  package var description: String {
    if let cause { return "\(message) (\(cause))" }
    return message
  }

  package static func == (lhs: Self, rhs: Self) -> Bool {
    lhs.code == rhs.code && lhs.message == rhs.message
  }
}
