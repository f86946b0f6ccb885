internal import OrderedCollections
internal import PilotfishKit

/// The objects injection adds to a pod: the init container, the proxy container and their volumes.
///
/// Invariant: the output is a function of the inputs only (no clock, no randomness, map keys in a fixed
/// order), so injecting the same pod twice gives the same bytes; every object has its keys in
/// alphabetical order, as Istio's injected manifests show them.
struct SidecarTemplate {
  var options: SidecarOptions
  var settings: InjectorSettings
  /// Values for `ISTIO_META_WORKLOAD_NAME` and `ISTIO_META_OWNER`; nil leaves the variable out.
  var workloadName: String?
  var owner: String?
  /// The app containers' ports, for `ISTIO_META_POD_PORTS`.
  var podPorts: [JSONValue]
  /// The app containers' names, for `ISTIO_META_APP_CONTAINERS`.
  var appContainers: [String]

  typealias Keys = InjectionKeys

  // MARK: init container

  /// `istio-init` (`istio-validation` in CNI mode), or nil with interception mode NONE.
  var initContainer: JSONValue? {
    guard options.hasInitContainer else { return nil }
    var args: [String] = [
      "istio-iptables",
      "-p", String(Keys.outboundCapturePort),
      "-z", String(Keys.inboundCapturePort),
      "-u", String(Keys.proxyUID),
      "-m", options.interceptionMode,
      "-i", options.includeOutboundIPRanges,
      "-x", options.excludeOutboundIPRanges,
      "-b", options.includeInboundPorts,
      "-d",
      (["\(Keys.proxyPrometheusPort)", "\(Keys.proxyHealthPort)"]
        + (options.excludeInboundPorts.isEmpty ? [] : [options.excludeInboundPorts])).joined(separator: ","),
    ]
    if let ports = options.includeOutboundPorts { args += ["-q", ports] }
    if let ports = options.excludeOutboundPorts { args += ["-o", ports] }
    if let interfaces = options.virtualInterfaces { args += ["-k", interfaces] }
    if let interfaces = options.excludeInterfaces { args += ["-c", interfaces] }
    args.append("--log-level=\(options.iptablesLogLevel)")
    if options.cniMode { args += ["--run-validation", "--skip-rule-apply"] }
    if options.nativeNftables { args.append("--native-nftables") }

    var container: OrderedDictionary<String, JSONValue> = ["args": .array(args.map { .string($0) })]
    if !options.proxyMetadata.isEmpty {
      container["env"] = .array(options.proxyMetadata.map { Self.env($0.name, $0.value) })
    }
    container["image"] = .string(options.image)
    container["name"] = .string(options.cniMode ? Keys.validationContainer : Keys.initContainer)
    container["resources"] = options.resources
    if options.cniMode {
      container["securityContext"] = [
        "allowPrivilegeEscalation": false,
        "capabilities": ["drop": ["ALL"]],
        "privileged": false,
        "readOnlyRootFilesystem": true,
        "runAsGroup": .int(Keys.proxyUID),
        "runAsNonRoot": true,
        "runAsUser": .int(Keys.proxyUID),
      ]
    } else {
      container["securityContext"] = [
        "allowPrivilegeEscalation": false,
        "capabilities": ["add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]],
        "privileged": false,
        "readOnlyRootFilesystem": false,
        "runAsGroup": 0,
        "runAsNonRoot": false,
        "runAsUser": 0,
      ]
    }
    return .object(container)
  }

  // MARK: proxy container

  /// `istio-proxy`, a native sidecar (`restartPolicy: Always`) when `options.native`.
  var proxyContainer: JSONValue {
    let args: [String] = [
      "proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
      "--proxyLogLevel=\(options.proxyLogLevel)",
      "--proxyComponentLogLevel=\(options.proxyComponentLogLevel)",
      "--log_output_level=\(options.agentLogLevel)",
    ]
    var container: OrderedDictionary<String, JSONValue> = [
      "args": .array(args.map { .string($0) }),
      "env": .array(environment),
      "image": .string(options.image),
    ]
    if options.holdApplication {
      container["lifecycle"] = ["postStart": ["exec": ["command": ["pilotfish", "wait"]]]]
    } else if options.native {
      // The pod is shutting down: start draining; SIGTERM follows once the app containers have stopped.
      container["lifecycle"] = [
        "preStop": [
          "exec": [
            "command": [
              "pilotfish", "request", .string("--debug-port=\(options.statusPort)"), "POST", "drain",
            ]
          ]
        ]
      ]
    }
    container["name"] = .string(Keys.proxyContainer)
    container["ports"] = [
      ["containerPort": .int(Keys.proxyPrometheusPort), "name": "http-envoy-prom", "protocol": "TCP"]
    ]
    if options.statusPort != 0 {
      var readiness: OrderedDictionary<String, JSONValue> = [
        "failureThreshold": .int(options.readinessFailureThreshold),
        "httpGet": Self.healthCheck,
      ]
      if options.readinessInitialDelaySeconds != 0 {
        readiness["initialDelaySeconds"] = .int(options.readinessInitialDelaySeconds)
      }
      readiness["periodSeconds"] = .int(options.readinessPeriodSeconds)
      readiness["timeoutSeconds"] = 3
      container["readinessProbe"] = .object(readiness)
    }
    container["resources"] = options.resources
    if options.native { container["restartPolicy"] = "Always" }
    let tproxy = options.interceptionMode == "TPROXY"
    container["securityContext"] = [
      "allowPrivilegeEscalation": false,
      "capabilities": tproxy ? ["add": ["NET_ADMIN"], "drop": ["ALL"]] : ["drop": ["ALL"]],
      "privileged": false,
      "readOnlyRootFilesystem": true,
      "runAsGroup": .int(Keys.proxyUID),
      "runAsNonRoot": .bool(!tproxy),
      "runAsUser": .int(tproxy ? 0 : Keys.proxyUID),
    ]
    if options.statusPort != 0 {
      container["startupProbe"] = [
        "failureThreshold": 600, "httpGet": Self.healthCheck, "periodSeconds": 1, "timeoutSeconds": 3,
      ]
    }
    container["volumeMounts"] = .array(volumeMounts)
    return .object(container)
  }

  private static let healthCheck: JSONValue = [
    "path": "/healthz/ready", "port": .int(InjectionKeys.proxyHealthPort),
  ]

  /// The proxy's environment, in Istio's order; ProxyConfig metadata replaces a variable of the same name
  /// in place and is appended otherwise.
  var environment: [JSONValue] {
    var env: [JSONValue] = [
      Self.env("PILOT_CERT_PROVIDER", "istiod"),
      Self.env("CA_ADDR", settings.caAddress),
      Self.field("POD_NAME", "metadata.name"),
      Self.field("POD_NAMESPACE", "metadata.namespace"),
      Self.field("INSTANCE_IP", "status.podIP"),
      Self.field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
      Self.field("HOST_IP", "status.hostIP"),
      Self.resource("ISTIO_CPU_LIMIT", "limits.cpu"),
      Self.env("PROXY_CONFIG", options.proxyConfig.jsonText),
      Self.env("ISTIO_META_POD_PORTS", JSONValue.array(podPorts).jsonText),
      Self.env("ISTIO_META_APP_CONTAINERS", appContainers.joined(separator: ",")),
      Self.resource("GOMEMLIMIT", "limits.memory"),
      Self.env("ISTIO_META_CLUSTER_ID", settings.clusterID.isEmpty ? "Kubernetes" : settings.clusterID),
      Self.field("ISTIO_META_NODE_NAME", "spec.nodeName"),
      Self.env("ISTIO_META_INTERCEPTION_MODE", options.interceptionMode),
    ]
    if let workloadName, !workloadName.isEmpty {
      env.append(Self.env("ISTIO_META_WORKLOAD_NAME", workloadName))
    }
    if let owner { env.append(Self.env("ISTIO_META_OWNER", owner)) }
    if options.bootstrapOverride != nil {
      env.append(Self.env("ISTIO_BOOTSTRAP_OVERRIDE", "/etc/istio/custom-bootstrap/custom_bootstrap.json"))
    }
    let meshID = settings.meshID.isEmpty ? settings.trustDomain : settings.meshID
    if !meshID.isEmpty { env.append(Self.env("ISTIO_META_MESH_ID", meshID)) }
    if !settings.trustDomain.isEmpty { env.append(Self.env("TRUST_DOMAIN", settings.trustDomain)) }
    for (name, value) in options.proxyMetadata {
      if let index = env.firstIndex(where: { $0["name"]?.stringValue == name }) {
        env[index] = Self.env(name, value)
      } else {
        env.append(Self.env(name, value))
      }
    }
    return env
  }

  // MARK: volumes

  private struct Volume {
    var name: String
    var mountPath: String
    var source: OrderedDictionary<String, JSONValue>
  }

  /// The injected volumes in Istio's order, with where the proxy mounts them.
  private var standardVolumes: [Volume] {
    var volumes = [
      Volume(
        name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds", source: ["emptyDir": [:]]),
      Volume(
        name: "credential-socket", mountPath: "/var/run/secrets/credential-uds", source: ["emptyDir": [:]]),
      Volume(
        name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials",
        source: ["emptyDir": [:]]),
    ]
    if let name = options.bootstrapOverride {
      volumes.append(
        Volume(
          name: "custom-bootstrap-volume", mountPath: "/etc/istio/custom-bootstrap",
          source: ["configMap": ["name": .string(name)]]))
    }
    volumes += [
      Volume(name: "istio-envoy", mountPath: "/etc/istio/proxy", source: ["emptyDir": ["medium": "Memory"]]),
      Volume(name: "istio-data", mountPath: "/var/lib/istio/data", source: ["emptyDir": [:]]),
      Volume(
        name: "istio-podinfo", mountPath: "/etc/istio/pod",
        source: [
          "downwardAPI": [
            "items": [
              ["fieldRef": ["fieldPath": "metadata.labels"], "path": "labels"],
              ["fieldRef": ["fieldPath": "metadata.annotations"], "path": "annotations"],
            ]
          ]
        ]),
      Volume(
        name: "istio-token", mountPath: "/var/run/secrets/tokens",
        source: [
          "projected": [
            "sources": [
              [
                "serviceAccountToken": [
                  "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token",
                ]
              ]
            ]
          ]
        ]),
      Volume(
        name: "istiod-ca-cert", mountPath: "/var/run/secrets/istio",
        source: ["configMap": ["name": "istio-ca-root-cert"]]),
      Volume(
        name: "istio-ca-crl", mountPath: "/var/run/secrets/istio/crl",
        source: ["configMap": ["name": "istio-ca-crl", "optional": true]]),
    ]
    return volumes
  }

  /// The volumes to add to the pod: Istio's, then the `sidecar.istio.io/userVolume` ones.
  var volumes: [JSONValue] {
    standardVolumes.map { Self.sorted($0.source.merging(["name": .string($0.name)]) { a, _ in a }) }
      + options.userVolumes.map { Self.sorted($0.source.merging(["name": .string($0.name)]) { _, b in b }) }
  }

  /// The proxy's mounts, in Istio's order, then the `sidecar.istio.io/userVolumeMount` ones.
  private var volumeMounts: [JSONValue] {
    let order = [
      "workload-socket", "credential-socket", "workload-certs", "istiod-ca-cert", "istio-ca-crl",
      "istio-data",
      "custom-bootstrap-volume", "istio-envoy", "istio-token", "istio-podinfo",
    ]
    let byName = Dictionary(uniqueKeysWithValues: standardVolumes.map { ($0.name, $0.mountPath) })
    let standard: [JSONValue] = order.compactMap { name in
      byName[name].map { ["mountPath": .string($0), "name": .string(name)] }
    }
    return standard
      + options.userVolumeMounts.map {
        Self.sorted($0.mount.merging(["name": .string($0.name)]) { _, b in b })
      }
  }

  // MARK: helpers

  static func env(_ name: String, _ value: String) -> JSONValue {
    ["name": .string(name), "value": .string(value)]
  }

  private static func field(_ name: String, _ path: String) -> JSONValue {
    ["name": .string(name), "valueFrom": ["fieldRef": ["fieldPath": .string(path)]]]
  }

  private static func resource(_ name: String, _ resource: String) -> JSONValue {
    [
      "name": .string(name),
      "valueFrom": ["resourceFieldRef": ["divisor": "1", "resource": .string(resource)]],
    ]
  }

  private static func sorted(_ object: OrderedDictionary<String, JSONValue>) -> JSONValue {
    var copy = object
    copy.sort { $0.key < $1.key }
    return .object(copy)
  }
}
