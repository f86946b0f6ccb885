internal import Foundation
internal import Glibc
internal import Testing

/// The gate for tests that need root (network namespaces, netlink writes).
///
/// Invariant: on a developer machine without root such tests are skipped; where privileged
/// tests are mandatory (`CI=true` or `PILOTFISH_PRIVILEGED_TESTS=1`) they run and fail instead,
/// so a misconfigured CI runner cannot turn them into silent skips.
enum Privileged {
  /// The process runs as root.
  static var available: Bool { geteuid() == 0 }

  /// The environment demands that privileged tests run.
  static var mandatory: Bool {
    let env = ProcessInfo.processInfo.environment
    return env["CI"] == "true" || env["PILOTFISH_PRIVILEGED_TESTS"] == "1"
  }

  /// Use as `.enabled(if: Privileged.shouldRun, ...)`: false only when a skip is acceptable.
  static var shouldRun: Bool { available || mandatory }

  /// Call first in a privileged test: returns true if it may proceed. Otherwise returns false,
  /// after recording a failure when privileged tests are mandatory.
  static func require(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if available { return true }
    guard mandatory else { return false }
    let message =
      "This test needs root (network namespaces, netlink), and CI=true or "
      + "PILOTFISH_PRIVILEGED_TESTS=1 makes privileged tests mandatory. Run it as root."
    Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    return false
  }
}
