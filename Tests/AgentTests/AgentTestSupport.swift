import Foundation

/// A fresh temporary directory laid out like the proxy container's working directory.
struct TempRoot {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "pilotfish-agent-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func write(_ relative: String, _ text: String) throws {
    let full = path + "/" + relative
    try FileManager.default.createDirectory(
      atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: full))
  }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The sample pod used by the bootstrap tests and the golden file.
let samplePodJSON = """
  {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
      "name": "web-5d9f8-abcde",
      "namespace": "shop",
      "labels": {
        "app": "web",
        "version": "v1",
        "pod-template-hash": "5d9f8",
        "istio-locality": "us-east1.us-east1-b"
      },
      "annotations": {
        "proxy.istio.io/config": "{\\"concurrency\\": 2, \\"proxyStatsMatcher\\": {\\"inclusionPrefixes\\": [\\"upstream_rq\\"]}}"
      },
      "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9f8", "controller": true}
      ]
    },
    "spec": {
      "serviceAccountName": "web-sa",
      "nodeName": "node-1",
      "containers": [{"name": "web", "image": "nginx"}]
    },
    "status": {"podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}, {"ip": "fd00::3"}], "hostIP": "192.168.0.10"}
  }
  """
