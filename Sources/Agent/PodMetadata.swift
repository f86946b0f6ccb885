internal import Foundation
package import PilotfishKit

/// Everything the agent knows about its pod: identity, labels and annotations, node metadata from
/// `ISTIO_META_*` / `ISTIO_METAJSON_*`, and the layered ProxyConfig. Built from the environment plus
/// the downward-API files (inside Kubernetes), or from a Pod object (`--pod-metadata pod.json`).
package struct PodMetadata: Equatable, Sendable {
  package var name: String
  package var namespace: String
  package var instanceIPs: [String]
  package var serviceAccount: String
  package var hostIP: String
  package var nodeName: String
  package var labels: [String: String]
  package var annotations: [String: String]
  package var clusterID: String
  package var meshID: String
  package var trustDomain: String
  /// DNS domain, the node id's last field: `<namespace>.svc.cluster.local`; the caller may override it
  /// (pilot-agent's `--domain`).
  package var domain: String
  package var workloadName: String
  package var owner: String
  package var istioVersion: String
  /// Every `ISTIO_META_X` (and `ISTIO_METAJSON_X`, parsed) as node metadata key `X`,
  /// including those from ProxyConfig.proxyMetadata.
  package var meta: [String: JSONValue]
  package var proxyConfig: ProxyConfig
  /// The effective environment: the process environment overlaid with proxyMetadata.
  package var environment: [String: String]

  /// The Istio release whose data-plane contract Pilotfish implements, reported as ISTIO_VERSION.
  package static let compatibleIstioVersion = "1.32.0"

  package static let labelsFile = "etc/istio/pod/labels"
  package static let annotationsFile = "etc/istio/pod/annotations"
  package static let proxyConfigAnnotation = "proxy.istio.io/config"

  /// From the environment and the downward-API files under `root` (the working directory, `/` in the
  /// proxy image). `meshConfigPath` is read only if it exists, like `--meshConfig`.
  package static func fromEnvironment(
    _ env: [String: String], root: String = ".", meshConfigPath: String? = nil
  ) throws(AgentError) -> PodMetadata {
    let labels = try DownwardAPIFile.read(path: join(root, labelsFile))
    let annotations = try DownwardAPIFile.read(path: join(root, annotationsFile))
    let ips = (env["INSTANCE_IP"] ?? "").split(separator: ",").map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    let identity = Identity(
      name: env["POD_NAME"] ?? "", namespace: env["POD_NAMESPACE"] ?? "",
      instanceIPs: ips.filter { !$0.isEmpty }, serviceAccount: env["SERVICE_ACCOUNT"] ?? "",
      hostIP: env["HOST_IP"] ?? "", nodeName: env["NODE_NAME"] ?? "",
      labels: labels, annotations: annotations,
      annotationsSource: join(root, annotationsFile), workloadName: nil, owner: nil)
    return try build(
      identity: identity, env: env, meshConfigPath: meshConfigPath.map { join(root, $0) })
  }

  /// From a Kubernetes Pod object (JSON) at `path`; the environment still supplies ISTIO_META_*,
  /// PROXY_CONFIG and the rest, but the pod's fields win for identity, labels and annotations.
  package static func fromPodFile(
    path: String, environment env: [String: String], meshConfigPath: String? = nil
  ) throws(AgentError) -> PodMetadata {
    guard FileManager.default.fileExists(atPath: path) else {
      throw AgentError(.invalidFile, "\(path): pod metadata file not found")
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw AgentError(.invalidFile, "\(path): cannot read pod metadata", cause: error)
    }
    let pod: JSONValue
    do {
      pod = try JSONValue.parseJSON([UInt8](data))
    } catch {
      throw AgentError(.invalidFile, "\(path): malformed JSON", cause: error)
    }
    return try fromPod(pod, source: path, environment: env, meshConfigPath: meshConfigPath)
  }

  package static func fromPod(
    _ pod: JSONValue, source: String, environment env: [String: String],
    meshConfigPath: String? = nil
  ) throws(AgentError) -> PodMetadata {
    guard case .object = pod else { throw AgentError(.invalidFile, "\(source): not a JSON object") }
    let metadata = FieldReader(
      object: pod["metadata"]?.objectValue ?? [:], source: "\(source) metadata", code: .invalidFile)
    let spec = FieldReader(
      object: pod["spec"]?.objectValue ?? [:], source: "\(source) spec", code: .invalidFile)
    let status = FieldReader(
      object: pod["status"]?.objectValue ?? [:], source: "\(source) status", code: .invalidFile)
    guard let name = try metadata.string("name"), !name.isEmpty else {
      throw AgentError(.invalidFile, "\(source): metadata.name is required")
    }
    let namespace = try metadata.string("namespace") ?? env["POD_NAMESPACE"] ?? "default"
    let labels = try metadata.stringMap("labels")
    let annotations = try metadata.stringMap("annotations")
    var ips: [String] = []
    if case .array(let podIPs)? = pod["status"]?["podIPs"] {
      ips = podIPs.compactMap { $0["ip"]?.stringValue }
    }
    if ips.isEmpty, let ip = try status.string("podIP") { ips = [ip] }
    if ips.isEmpty, let ip = env["INSTANCE_IP"] { ips = [ip] }

    // Workload and owner as the injector computes them: a ReplicaSet owner with a
    // pod-template-hash label is a Deployment.
    var workload: String?
    var owner: String?
    if case .array(let refs)? = pod["metadata"]?["ownerReferences"],
      let ref = refs.first(where: { $0["controller"] == .bool(true) }) ?? refs.first,
      let kind = ref["kind"]?.stringValue, let refName = ref["name"]?.stringValue
    {
      let apiVersion = ref["apiVersion"]?.stringValue ?? "v1"
      let apiPath = apiVersion.contains("/") ? "apis/\(apiVersion)" : "api/\(apiVersion)"
      if kind == "ReplicaSet", let hash = labels["pod-template-hash"],
        refName.hasSuffix("-" + hash)
      {
        let deployment = String(refName.dropLast(hash.count + 1))
        workload = deployment
        owner = "kubernetes://apis/apps/v1/namespaces/\(namespace)/deployments/\(deployment)"
      } else {
        workload = refName
        owner = "kubernetes://\(apiPath)/namespaces/\(namespace)/\(kind.lowercased())s/\(refName)"
      }
    }
    let identity = Identity(
      name: name, namespace: namespace, instanceIPs: ips,
      serviceAccount: try spec.string("serviceAccountName") ?? env["SERVICE_ACCOUNT"] ?? "default",
      hostIP: try status.string("hostIP") ?? env["HOST_IP"] ?? "",
      nodeName: try spec.string("nodeName") ?? env["NODE_NAME"] ?? "",
      labels: labels, annotations: annotations, annotationsSource: "\(source) annotation",
      workloadName: workload ?? name,
      owner: owner ?? "kubernetes://api/v1/namespaces/\(namespace)/pods/\(name)")
    return try build(identity: identity, env: env, meshConfigPath: meshConfigPath)
  }

  struct Identity {
    var name: String
    var namespace: String
    var instanceIPs: [String]
    var serviceAccount: String
    var hostIP: String
    var nodeName: String
    var labels: [String: String]
    var annotations: [String: String]
    var annotationsSource: String
    var workloadName: String?
    var owner: String?
  }

  static func build(
    identity: Identity, env: [String: String], meshConfigPath: String?
  ) throws(AgentError) -> PodMetadata {
    // ProxyConfig: mesh defaults → mesh config file → PROXY_CONFIG → annotation.
    var layers: [ProxyConfig.Layer] = []
    if let meshConfigPath, FileManager.default.fileExists(atPath: meshConfigPath) {
      let text: String
      do {
        text = try String(contentsOfFile: meshConfigPath, encoding: .utf8)
      } catch {
        throw AgentError(.invalidFile, "\(meshConfigPath): cannot read mesh config", cause: error)
      }
      let mesh: JSONValue
      do {
        mesh = try JSONValue.parse(jsonOrYAML: text)
      } catch {
        throw AgentError(.invalidFile, "\(meshConfigPath): malformed mesh config", cause: error)
      }
      if let defaults = mesh["defaultConfig"] {
        layers.append(.init(source: meshConfigPath + " defaultConfig", value: defaults, code: .invalidFile))
      }
    }
    if let text = env["PROXY_CONFIG"], !text.isEmpty {
      layers.append(.init(source: "PROXY_CONFIG", text: text, code: .invalidEnvironment))
    }
    if let text = identity.annotations[proxyConfigAnnotation], !text.isEmpty {
      layers.append(
        .init(
          source: "\(identity.annotationsSource) \(proxyConfigAnnotation)", text: text,
          code: .invalidAnnotation))
    }
    var proxyConfig = try ProxyConfig.layered(layers)
    if let address = identity.annotations["sidecar.istio.io/discoveryAddress"], !address.isEmpty {
      proxyConfig.discoveryAddress = address
    }
    if let port = identity.annotations["status.sidecar.istio.io/port"] {
      guard let p = Int(port), (0...65535).contains(p) else {
        throw AgentError(
          .invalidAnnotation, "annotation status.sidecar.istio.io/port: invalid port \"\(port)\"")
      }
      proxyConfig.statusPort = p
    }
    if (proxyConfig.concurrency ?? 0) == 0, let limit = env["ISTIO_CPU_LIMIT"], !limit.isEmpty {
      guard let cpus = Int(limit) else {
        throw AgentError(.invalidEnvironment, "ISTIO_CPU_LIMIT: expected an integer, got \"\(limit)\"")
      }
      if cpus != 0 { proxyConfig.concurrency = cpus }
    }

    // The effective environment: proxyMetadata entries are applied over the process environment.
    var effective = env
    for (k, v) in proxyConfig.proxyMetadata { effective[k] = v }

    var meta: [String: JSONValue] = [:]
    var labels = identity.labels
    var annotations = identity.annotations
    for (key, value) in effective.sorted(by: { $0.key < $1.key }) {
      if key.hasPrefix("ISTIO_METAJSON_") {
        let name = String(key.dropFirst("ISTIO_METAJSON_".count))
        let parsed: JSONValue
        do {
          parsed = try JSONValue.parseJSON(value)
        } catch {
          throw AgentError(.invalidEnvironment, "\(key): malformed JSON", cause: error)
        }
        if name == "LABELS" || name == "ANNOTATIONS" {
          guard case .object(let o) = parsed else {
            throw AgentError(.invalidEnvironment, "\(key): expected a JSON object")
          }
          for (k, v) in o {
            guard let s = v.stringValue else {
              throw AgentError(.invalidEnvironment, "\(key): value of \(k) must be a string")
            }
            if name == "LABELS" { labels[k] = s } else { annotations[k] = s }
          }
        } else {
          meta[name] = parsed
        }
      }
    }
    for (key, value) in effective where key.hasPrefix("ISTIO_META_") {
      meta[String(key.dropFirst("ISTIO_META_".count))] = .string(value)
    }

    let namespace = identity.namespace.isEmpty ? "default" : identity.namespace
    let trustDomain = effective["TRUST_DOMAIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "cluster.local"
    return PodMetadata(
      name: identity.name, namespace: namespace,
      instanceIPs: dedupe(identity.instanceIPs.isEmpty ? ["127.0.0.1"] : identity.instanceIPs),
      serviceAccount: identity.serviceAccount, hostIP: identity.hostIP,
      nodeName: meta["NODE_NAME"]?.stringValue ?? identity.nodeName,
      labels: labels, annotations: annotations,
      clusterID: meta["CLUSTER_ID"]?.stringValue ?? "Kubernetes",
      meshID: meta["MESH_ID"]?.stringValue ?? trustDomain,
      trustDomain: trustDomain,
      domain: "\(namespace).svc.cluster.local",
      workloadName: meta["WORKLOAD_NAME"]?.stringValue ?? identity.workloadName ?? identity.name,
      owner: meta["OWNER"]?.stringValue ?? identity.owner
        ?? "kubernetes://api/v1/namespaces/\(namespace)/pods/\(identity.name)",
      istioVersion: meta["ISTIO_VERSION"]?.stringValue ?? compatibleIstioVersion,
      meta: meta, proxyConfig: proxyConfig, environment: effective)
  }

  static func dedupe(_ values: [String]) -> [String] {
    var seen = Set<String>()
    return values.filter { seen.insert($0).inserted }
  }

  static func join(_ root: String, _ path: String) -> String {
    if path.hasPrefix("/") { return path }
    let stripped = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
    return root.hasSuffix("/") ? root + stripped : root + "/" + stripped
  }
}
