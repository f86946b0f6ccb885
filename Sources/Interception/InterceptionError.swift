package import PilotfishKit

/// The one error type of the interception domain.
///
/// `message` is written for an operator: it names what is wrong and where (flag, value, capability).
/// Equality ignores `cause`, so tests can compare errors.
package typealias InterceptionError = DomainError<InterceptionErrorCode>

package enum InterceptionErrorCode: String, DomainErrorCode {
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

  package static func describe(_ message: String, cause: any Error) -> String { "\(message) (\(cause))" }
}
