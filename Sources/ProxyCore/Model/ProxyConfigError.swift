/// A listener, cluster or filter configuration the proxy cannot use. `path` is the field path inside the
/// resource as the operator wrote it (`filter_chains[0].filters[1].typed_config`); the composition root
/// prefixes it with where the resource came from (`static_resources.listeners[2]`, an LDS response …).
package struct ProxyConfigError: Error, Equatable, Sendable, CustomStringConvertible {
  package var path: String
  package var message: String

  package init(_ path: String, _ message: String) {
    self.path = path
    self.message = message
  }

  /// The same error, seen from an enclosing field: `prefixed("listeners[2]")`.
  package func prefixed(_ outer: String) -> ProxyConfigError {
    guard !outer.isEmpty else { return self }
    return ProxyConfigError(
      path.isEmpty ? outer : path.hasPrefix("[") ? outer + path : outer + "." + path, message)
  }

  package var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Something accepted but not acted on (an Istio-only filter type, an unsupported optional field). The
/// composition root logs each distinct warning once.
package struct ProxyConfigWarning: Sendable, Equatable, Hashable, CustomStringConvertible {
  package var path: String
  package var message: String

  package init(_ path: String, _ message: String) {
    self.path = path
    self.message = message
  }

  package var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
