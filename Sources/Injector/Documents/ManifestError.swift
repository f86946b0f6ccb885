/// Why `pilotfish inject` could not process a manifest: which document (1-based), which object, what.
///
/// Equality compares the code and the message, so tests can compare whole errors.
package struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
  package enum Code: String, Sendable, Equatable {
    /// The text is neither YAML nor JSON.
    case unreadable
    /// A workload's shape is wrong (e.g. `spec.template` is not an object).
    case malformed
    /// The pod mutation refused the pod (bad annotation, conflicting settings).
    case injection
    /// An injector configuration file is wrong.
    case configuration
  }

  package var code: Code
  package var message: String

  package init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  package var description: String { message }
}
