package import PilotfishKit

/// Why `pilotfish inject` could not process a manifest: which document (1-based), which object, what.
///
/// Equality compares the code and the message, so tests can compare whole errors.
package typealias ManifestError = DomainError<ManifestErrorCode>

package enum ManifestErrorCode: String, DomainErrorCode {
  /// The text is neither YAML nor JSON.
  case unreadable
  /// A workload's shape is wrong (e.g. `spec.template` is not an object).
  case malformed
  /// The pod mutation refused the pod (bad annotation, conflicting settings).
  case injection
  /// An injector configuration file is wrong.
  case configuration
}
