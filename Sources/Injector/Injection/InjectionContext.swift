/// Everything about one injection that is not in the pod: where it runs, who owns it, the mesh settings.
///
/// Invariant: `namespace` is the pod's namespace as Kubernetes will store it (the object's own, else the
/// AdmissionRequest's); the owner fields, when set, name the workload the pod belongs to (a Deployment
/// for a Deployment's template) and win over what the pod's own metadata suggests.
package struct InjectionContext: Sendable {
  package var namespace: String
  /// Labels of the namespace (`istio-injection`, `istio.io/rev`); empty when unknown.
  package var namespaceLabels: [String: String] = [:]
  /// `Deployment`, `CronJob`, `Pod`...: with `ownerName` and `ownerAPIVersion`, `ISTIO_META_OWNER`.
  package var ownerKind: String?
  /// The workload name: `ISTIO_META_WORKLOAD_NAME` and the canonical-name fallback.
  package var ownerName: String?
  /// `apps/v1`, `batch/v1`, `v1`...
  package var ownerAPIVersion: String?
  package var settings: InjectorSettings

  package init(
    namespace: String, namespaceLabels: [String: String] = [:], settings: InjectorSettings = .init()
  ) {
    self.namespace = namespace
    self.namespaceLabels = namespaceLabels
    self.settings = settings
  }
}
