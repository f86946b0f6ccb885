/// The kinds `pilotfish inject` mutates and where each keeps its pod (template).
package enum WorkloadKind: Sendable, Equatable {
  /// A Pod: the object itself.
  case pod
  /// Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job: `spec.template`.
  case template
  /// CronJob: `spec.jobTemplate.spec.template`.
  case cronJob
  /// List: each of `items`.
  case list

  /// The kind's handling, or nil for kinds that pass through untouched.
  package init?(kind: String) {
    switch kind {
    case "Pod": self = .pod
    case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
      self = .template
    case "CronJob": self = .cronJob
    case "List": self = .list
    default: return nil
    }
  }

  /// Object keys from the workload to its pod (template); empty for a Pod, nil for a List.
  package var podPath: [String]? {
    switch self {
    case .pod: return []
    case .template: return ["spec", "template"]
    case .cronJob: return ["spec", "jobTemplate", "spec", "template"]
    case .list: return nil
    }
  }
}
