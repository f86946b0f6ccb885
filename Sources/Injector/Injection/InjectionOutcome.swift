package import PilotfishKit

/// The result of `PodInjector.inject`.
///
/// Invariant: `.injected` carries the whole mutated object (never a diff); `.skipped` means the input is
/// to be admitted unchanged, and its reason says which rule decided (for logs and `pilotfish inject` notes).
package enum InjectionOutcome: Sendable, Equatable {
  case injected(JSONValue)
  case skipped(reason: String)
}
