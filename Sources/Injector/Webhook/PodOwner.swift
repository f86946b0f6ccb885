package import PilotfishKit

/// The workload a pod belongs to, as `ISTIO_META_OWNER` and `ISTIO_META_WORKLOAD_NAME` describe it.
///
/// Only a pod with a generated name is traced to its controller (the owner reference with
/// `controller: true`). A ReplicaSet whose name ends in the pod's `pod-template-hash` stands for its
/// Deployment, a Job named `<name>-<8 to 10 digits>` for its CronJob (`batch/v1`). Anything else is the
/// pod itself (`v1`, `Pod`, its name).
package struct PodOwner: Sendable, Equatable {
  package var apiVersion: String
  package var kind: String
  package var name: String

  package init(apiVersion: String, kind: String, name: String) {
    self.apiVersion = apiVersion
    self.kind = kind
    self.name = name
  }

  package init(pod: JSONValue) {
    let podName = pod[path: "metadata", "name"]?.stringValue ?? ""
    self.init(apiVersion: "v1", kind: "Pod", name: podName)
    guard let generateName = pod[path: "metadata", "generateName"]?.stringValue, !generateName.isEmpty,
      let references = pod[path: "metadata", "ownerReferences"]?.arrayValue,
      let controller = references.first(where: { $0["controller"]?.boolValue == true })
    else { return }

    apiVersion = controller["apiVersion"]?.stringValue ?? ""
    kind = controller["kind"]?.stringValue ?? ""
    name = controller["name"]?.stringValue ?? ""
    let labels = pod[path: "metadata", "labels"]
    if kind == "ReplicaSet", let hash = labels?["pod-template-hash"]?.stringValue, !hash.isEmpty,
      name.hasSuffix("-" + hash)
    {
      name = String(name.dropLast(hash.count + 1))
      kind = "Deployment"
    } else if kind == "ReplicationController", let config = labels?["deploymentconfig"]?.stringValue,
      !config.isEmpty
    {
      name = config
      kind = "DeploymentConfig"
    } else if kind == "Job", let dash = name.lastIndex(of: "-"), dash != name.startIndex {
      let digits = name[name.index(after: dash)...]
      if (8...10).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
        name = String(name[..<dash])
        kind = "CronJob"
        apiVersion = "batch/v1"
      }
    }
    if name.isEmpty { name = podName }
  }
}
