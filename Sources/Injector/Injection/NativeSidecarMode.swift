/// Istio's `ENABLE_NATIVE_SIDECARS`: whether `istio-proxy` is injected as a native sidecar.
///
/// Invariant: `.auto` never guesses; it turns native sidecars on only when the kubelet version is known
/// to be 1.33 or later (`InjectorSettings.kubeletMinorVersion`).
package enum NativeSidecarMode: String, Sendable, Equatable, CaseIterable {
  case enabled
  case disabled
  case auto

  /// Whether a pod gets a native sidecar when it has no `sidecar.istio.io/nativeSidecar` annotation.
  package func isOn(kubeletMinorVersion: Int?) -> Bool {
    switch self {
    case .enabled: return true
    case .disabled: return false
    case .auto: return (kubeletMinorVersion ?? 0) >= 33
    }
  }
}
