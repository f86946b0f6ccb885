internal import OrderedCollections

/// Decides whether a pod gets a sidecar, as Istio's webhook selectors and `injectRequired` together do.
///
/// Invariant: the decision depends only on the pod's metadata and `hostNetwork`, the namespace and its
/// labels, and the settings; it is made before any annotation is validated, so a pod that is not injected
/// is never rejected. Order of the rules, first match wins:
/// 1. `hostNetwork` pods and the system namespaces are never injected;
/// 2. `sidecar.istio.io/inject: "false"` (the label beats the annotation of the same name) opts out;
/// 3. namespace label `istio-injection: disabled` opts out, `enabled` opts in;
/// 4. an `istio.io/rev` on the namespace, else on the pod, selects that revision only;
/// 5. `sidecar.istio.io/inject: "true"` opts in;
/// 6. otherwise `injectByDefault` decides. Values other than true/false are ignored, as Istio does.
enum InjectionPolicy {
  /// nil when the pod is to be injected, else the reason it is not.
  static func skipReason(
    labels: OrderedDictionary<String, String>, annotations: OrderedDictionary<String, String>,
    hostNetwork: Bool, context: InjectionContext
  ) -> String? {
    let keys = InjectionKeys.self
    if hostNetwork {
      return
        "the pod uses the host network (hostNetwork: true), where traffic capture would redirect the node's traffic"
    }
    if keys.ignoredNamespaces.contains(context.namespace) {
      return "namespace \(context.namespace) is a system namespace that is never injected"
    }

    let podSelector: String?
    let selectorSource: String
    if let label = labels[keys.inject] {
      podSelector = label
      selectorSource = "label"
    } else {
      podSelector = annotations[keys.inject]
      selectorSource = "annotation"
    }
    if podSelector == "false" {
      return "the pod has the \(selectorSource) \(keys.inject): \"false\""
    }

    switch context.namespaceLabels[keys.namespaceInjection] {
    case "disabled":
      return "namespace \(context.namespace) is labelled \(keys.namespaceInjection)=disabled"
    case "enabled":
      return nil
    default:
      break
    }

    let revision = context.settings.revision
    if let selected = context.namespaceLabels[keys.revision] {
      if selected == revision { return nil }
      return
        "namespace \(context.namespace) selects revision \"\(selected)\" (label \(keys.revision)); this injector is revision \"\(revision)\""
    }
    if let selected = labels[keys.revision] {
      if selected == revision { return nil }
      return
        "the pod selects revision \"\(selected)\" (label \(keys.revision)); this injector is revision \"\(revision)\""
    }

    if podSelector == "true" || context.settings.injectByDefault { return nil }
    return
      "injection is disabled by default, and neither the namespace (label \(keys.namespaceInjection)=enabled or \(keys.revision)) nor the pod (\(keys.inject): \"true\") asks for it"
  }
}
