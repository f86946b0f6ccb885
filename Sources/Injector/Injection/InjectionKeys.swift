/// Names of the labels, annotations, containers, volumes and environment variables the injector reads or
/// writes, and the fixed ports of the sidecar.
///
/// Invariant: every string here is Istio's, byte for byte, so a pod annotated for Istio is read the same way.
enum InjectionKeys {
  // Injection policy.
  static let inject = "sidecar.istio.io/inject"
  static let revision = "istio.io/rev"
  static let namespaceInjection = "istio-injection"
  static let status = "sidecar.istio.io/status"
  static let nativeSidecar = "sidecar.istio.io/nativeSidecar"
  static let templates = "inject.istio.io/templates"

  // Traffic capture.
  static let interceptionMode = "sidecar.istio.io/interceptionMode"
  static let includeOutboundIPRanges = "traffic.sidecar.istio.io/includeOutboundIPRanges"
  static let excludeOutboundIPRanges = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
  static let includeInboundPorts = "traffic.sidecar.istio.io/includeInboundPorts"
  static let excludeInboundPorts = "traffic.sidecar.istio.io/excludeInboundPorts"
  static let includeOutboundPorts = "traffic.sidecar.istio.io/includeOutboundPorts"
  static let excludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
  static let excludeInterfaces = "traffic.sidecar.istio.io/excludeInterfaces"
  static let kubevirtInterfaces = "traffic.sidecar.istio.io/kubevirtInterfaces"
  static let rerouteVirtualInterfaces = "istio.io/reroute-virtual-interfaces"

  // Proxy.
  static let statusPort = "status.sidecar.istio.io/port"
  static let readinessInitialDelay = "readiness.status.sidecar.istio.io/initialDelaySeconds"
  static let readinessPeriod = "readiness.status.sidecar.istio.io/periodSeconds"
  static let readinessFailureThreshold = "readiness.status.sidecar.istio.io/failureThreshold"
  static let proxyConfig = "proxy.istio.io/config"
  static let proxyImage = "sidecar.istio.io/proxyImage"
  static let proxyCPU = "sidecar.istio.io/proxyCPU"
  static let proxyMemory = "sidecar.istio.io/proxyMemory"
  static let proxyCPULimit = "sidecar.istio.io/proxyCPULimit"
  static let proxyMemoryLimit = "sidecar.istio.io/proxyMemoryLimit"
  static let logLevel = "sidecar.istio.io/logLevel"
  static let componentLogLevel = "sidecar.istio.io/componentLogLevel"
  static let agentLogLevel = "sidecar.istio.io/agentLogLevel"
  static let bootstrapOverride = "sidecar.istio.io/bootstrapOverride"
  static let userVolume = "sidecar.istio.io/userVolume"
  static let userVolumeMount = "sidecar.istio.io/userVolumeMount"
  static let rewriteAppHTTPProbers = "sidecar.istio.io/rewriteAppHTTPProbers"

  // Metrics.
  static let mergeMetrics = "prometheus.istio.io/merge-metrics"
  static let prometheusScrape = "prometheus.io/scrape"
  static let prometheusPort = "prometheus.io/port"
  static let prometheusPath = "prometheus.io/path"
  static let prometheusScrapeTargets = "prometheus.istio.io/scrape-targets"

  // Added metadata.
  static let tlsMode = "security.istio.io/tlsMode"
  static let canonicalName = "service.istio.io/canonical-name"
  static let canonicalRevision = "service.istio.io/canonical-revision"
  static let workloadName = "service.istio.io/workload-name"
  static let networkLabel = "topology.istio.io/network"
  static let defaultContainer = "kubectl.kubernetes.io/default-container"
  static let defaultLogsContainer = "kubectl.kubernetes.io/default-logs-container"

  // Containers and volumes.
  static let proxyContainer = "istio-proxy"
  static let initContainer = "istio-init"
  static let validationContainer = "istio-validation"

  // Environment of the proxy.
  static let appProbersEnv = "ISTIO_KUBE_APP_PROBERS"
  static let prometheusEnv = "ISTIO_PROMETHEUS_ANNOTATIONS"

  // Ports.
  static let outboundCapturePort = 15001
  static let inboundCapturePort = 15006
  static let proxyHealthPort = 15021
  static let proxyPrometheusPort = 15090
  static let proxyUID = 1337

  /// Namespaces that are never injected.
  static let ignoredNamespaces: Set<String> = [
    "kube-system", "kube-public", "kube-node-lease", "local-path-storage",
  ]

  /// Ports of the data plane an application metrics target may not use, with what owns them.
  static let reservedPorts: [Int: String] = [
    15000: "Envoy admin", 15001: "outbound traffic capture", 15004: "pilot debug",
    15006: "inbound traffic capture", 15008: "HBONE tunnel", 15020: "agent status / merged Prometheus",
    15021: "Envoy health", 15053: "DNS proxy", 15090: "Envoy Prometheus",
  ]
}
