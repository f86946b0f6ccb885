import Testing

@testable import Injector

/// Who gets a sidecar: Istio's webhook selectors and `injectRequired`, as one decision.
@Suite("Injection policy")
struct InjectionPolicyTests {
  static func reason(
    labels: [String: String] = [:], annotations: [String: String] = [:], hostNetwork: Bool = false,
    namespace: String = "default", namespaceLabels: [String: String] = [:], byDefault: Bool = true,
    revision: String = "default"
  ) -> String? {
    var settings = InjectorSettings()
    settings.injectByDefault = byDefault
    settings.revision = revision
    let context = InjectionContext(namespace: namespace, namespaceLabels: namespaceLabels, settings: settings)
    return InjectionPolicy.skipReason(
      labels: .init(uniqueKeysWithValues: labels.sorted { $0.key < $1.key }),
      annotations: .init(uniqueKeysWithValues: annotations.sorted { $0.key < $1.key }),
      hostNetwork: hostNetwork, context: context)
  }

  @Test("host network and system namespaces are never injected")
  func never() {
    #expect(
      Self.reason(labels: ["sidecar.istio.io/inject": "true"], hostNetwork: true)?.contains("hostNetwork")
        == true)
    for namespace in ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"] {
      #expect(
        Self.reason(labels: ["sidecar.istio.io/inject": "true"], namespace: namespace)
          == "namespace \(namespace) is a system namespace that is never injected")
    }
  }

  @Test("the label beats the annotation")
  func labelBeatsAnnotation() {
    #expect(
      Self.reason(
        labels: ["sidecar.istio.io/inject": "false"], annotations: ["sidecar.istio.io/inject": "true"])
        == #"the pod has the label sidecar.istio.io/inject: "false""#)
    #expect(
      Self.reason(
        labels: ["sidecar.istio.io/inject": "true"], annotations: ["sidecar.istio.io/inject": "false"],
        byDefault: false)
        == nil)
    #expect(
      Self.reason(annotations: ["sidecar.istio.io/inject": "false"])
        == #"the pod has the annotation sidecar.istio.io/inject: "false""#)
  }

  @Test("namespace labels")
  func namespaceLabels() {
    #expect(Self.reason(namespaceLabels: ["istio-injection": "enabled"], byDefault: false) == nil)
    #expect(
      Self.reason(
        labels: ["sidecar.istio.io/inject": "true"], namespaceLabels: ["istio-injection": "disabled"])
        == "namespace default is labelled istio-injection=disabled")
    #expect(
      Self.reason(
        labels: ["sidecar.istio.io/inject": "false"], namespaceLabels: ["istio-injection": "enabled"]) != nil)
    #expect(
      Self.reason(namespaceLabels: ["istio.io/rev": "canary"], byDefault: false, revision: "canary") == nil)
    #expect(
      Self.reason(namespaceLabels: ["istio.io/rev": "canary"])
        == #"namespace default selects revision "canary" (label istio.io/rev); this injector is revision "default""#
    )
  }

  @Test("the default policy")
  func defaults() {
    #expect(Self.reason() == nil)
    #expect(Self.reason(byDefault: false)?.hasPrefix("injection is disabled by default") == true)
    #expect(Self.reason(annotations: ["sidecar.istio.io/inject": "true"], byDefault: false) == nil)
    #expect(Self.reason(annotations: ["sidecar.istio.io/inject": "yes"], byDefault: false) != nil)
    #expect(Self.reason(annotations: ["sidecar.istio.io/inject": "yes"]) == nil)
  }

  @Test("native sidecars: annotation, then mode, then kubelet version")
  func nativeSidecars() {
    #expect(NativeSidecarMode.auto.isOn(kubeletMinorVersion: nil) == false)
    #expect(NativeSidecarMode.auto.isOn(kubeletMinorVersion: 32) == false)
    #expect(NativeSidecarMode.auto.isOn(kubeletMinorVersion: 33) == true)
    #expect(NativeSidecarMode.enabled.isOn(kubeletMinorVersion: nil) == true)
    #expect(NativeSidecarMode.disabled.isOn(kubeletMinorVersion: 40) == false)
  }
}
