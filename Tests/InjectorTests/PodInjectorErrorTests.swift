import PilotfishKit
import Testing

@testable import Injector

/// Invalid annotations and objects are refused before anything is produced, with a message that names the
/// annotation (or field) and the value.
@Suite("Pod injection errors")
struct PodInjectorErrorTests {
  static func pod(annotations: [(String, String)], containers: JSONValue? = nil) -> JSONValue {
    var metadata: JSONValue = ["name": "p"]
    if !annotations.isEmpty {
      metadata["annotations"] = .object(
        .init(uniqueKeysWithValues: annotations.map { ($0.0, JSONValue.string($0.1)) }))
    }
    return [
      "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
      "spec": ["containers": containers ?? [["name": "app", "image": "app:1"]]],
    ]
  }

  static func error(_ pod: JSONValue) -> InjectionError? {
    do {
      _ = try PodInjector.inject(pod, context: InjectionContext(namespace: "default"))
      return nil
    } catch {
      return error
    }
  }

  static let cases: [(annotation: String, value: String, message: String)] = [
    (
      "traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.0/33",
      #"annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "10.0.0.0/33" is not a CIDR"#
    ),
    (
      "traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.0/8,*",
      #"annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "*" in "10.0.0.0/8,*" is not a CIDR"#
    ),
    (
      "traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.1",
      #"annotation traffic.sidecar.istio.io/includeOutboundIPRanges: "10.0.0.1" is not a CIDR"#
    ),
    (
      "traffic.sidecar.istio.io/includeOutboundIPRanges", "fd00::/8,fd00:::1/64",
      #"annotation traffic.sidecar.istio.io/includeOutboundIPRanges: "fd00:::1/64" in "fd00::/8,fd00:::1/64" is not a CIDR"#
    ),
    (
      "traffic.sidecar.istio.io/includeOutboundIPRanges", "010.0.0.0/8",
      #"annotation traffic.sidecar.istio.io/includeOutboundIPRanges: "010.0.0.0/8" is not a CIDR"#
    ),
    (
      "traffic.sidecar.istio.io/includeInboundPorts", "80,http",
      #"annotation traffic.sidecar.istio.io/includeInboundPorts: "http" in "80,http" is not a port number (1-65535)"#
    ),
    (
      "traffic.sidecar.istio.io/excludeInboundPorts", "70000",
      #"annotation traffic.sidecar.istio.io/excludeInboundPorts: "70000" is not a port number (1-65535)"#
    ),
    (
      "traffic.sidecar.istio.io/excludeOutboundPorts", "*",
      #"annotation traffic.sidecar.istio.io/excludeOutboundPorts: "*" is not a port number (1-65535)"#
    ),
    (
      "traffic.sidecar.istio.io/includeOutboundPorts", "0",
      #"annotation traffic.sidecar.istio.io/includeOutboundPorts: "0" is not a port number (1-65535)"#
    ),
    (
      "traffic.sidecar.istio.io/excludeInterfaces", "eth0,this-name-is-too-long",
      #"annotation traffic.sidecar.istio.io/excludeInterfaces: "this-name-is-too-long" in "eth0,this-name-is-too-long" is not a network interface name"#
    ),
    (
      "sidecar.istio.io/interceptionMode", "redirect",
      #"annotation sidecar.istio.io/interceptionMode: "redirect" is not an interception mode (REDIRECT, TPROXY or NONE)"#
    ),
    (
      "status.sidecar.istio.io/port", "65536",
      #"annotation status.sidecar.istio.io/port: "65536" is not a port number (0-65535)"#
    ),
    (
      "readiness.status.sidecar.istio.io/periodSeconds", "-1",
      #"annotation readiness.status.sidecar.istio.io/periodSeconds: "-1" is not an unsigned 32-bit integer"#
    ),
    (
      "readiness.status.sidecar.istio.io/failureThreshold", "4294967296",
      #"annotation readiness.status.sidecar.istio.io/failureThreshold: "4294967296" is not an unsigned 32-bit integer"#
    ),
    (
      "prometheus.istio.io/merge-metrics", "yes",
      #"annotation prometheus.istio.io/merge-metrics: "yes" is not a boolean (true or false)"#
    ),
    (
      "sidecar.istio.io/proxyCPU", "100 m",
      #"annotation sidecar.istio.io/proxyCPU: "100 m" is not a resource quantity (e.g. 100m, 2, 128Mi, 1Gi)"#
    ),
    (
      "sidecar.istio.io/proxyMemoryLimit", "1GB",
      #"annotation sidecar.istio.io/proxyMemoryLimit: "1GB" is not a resource quantity (e.g. 100m, 2, 128Mi, 1Gi)"#
    ),
    (
      "sidecar.istio.io/proxyMemory", "-128Mi",
      #"annotation sidecar.istio.io/proxyMemory: "-128Mi" is not a resource quantity (e.g. 100m, 2, 128Mi, 1Gi)"#
    ),
    (
      "sidecar.istio.io/proxyCPULimit", "1\n",
      #"annotation sidecar.istio.io/proxyCPULimit: "1\n" is not a resource quantity (e.g. 100m, 2, 128Mi, 1Gi)"#
    ),
    (
      "proxy.istio.io/config", "just a string",
      #"annotation proxy.istio.io/config: "just a string" is not a ProxyConfig object"#
    ),
    (
      "proxy.istio.io/config", "holdApplicationUntilProxyStarts: maybe",
      #"annotation proxy.istio.io/config: "holdApplicationUntilProxyStarts: maybe" has a holdApplicationUntilProxyStarts that is not a boolean"#
    ),
    (
      "proxy.istio.io/config", "proxyMetadata: [a]",
      #"annotation proxy.istio.io/config: "proxyMetadata: [a]" has a proxyMetadata that is not a map of strings"#
    ),
    (
      "sidecar.istio.io/userVolume", "[1]",
      #"annotation sidecar.istio.io/userVolume: "[1]" is not a JSON object from volume name to volume"#
    ),
    (
      "sidecar.istio.io/userVolumeMount", #"{"m":{"mountPath":"/m"}}"#,
      #"annotation sidecar.istio.io/userVolumeMount: volume "m" is neither in sidecar.istio.io/userVolume nor in the pod"#
    ),
    (
      "sidecar.istio.io/agentLogLevel", "loud",
      #"annotation sidecar.istio.io/agentLogLevel: "loud" is not a log level (debug, info, warn, error or none, as [scope:]level,...)"#
    ),
    (
      "inject.istio.io/templates", "gateway",
      #"annotation inject.istio.io/templates: "gateway" names a template Pilotfish does not have (only "sidecar")"#
    ),
    (
      "prometheus.io/port", "15000",
      #"annotation prometheus.io/port: "15000" is reserved for the sidecar (Envoy admin) and cannot be scraped"#
    ),
    (
      "prometheus.istio.io/scrape-targets", "8080,:/x",
      #"annotation prometheus.istio.io/scrape-targets: ":/x" in "8080,:/x" has no port (use port[:path],...)"#
    ),
  ]

  @Test("invalid annotation values are refused with the annotation and value named", arguments: cases)
  func invalidAnnotation(_ example: (annotation: String, value: String, message: String)) {
    let error = Self.error(Self.pod(annotations: [(example.annotation, example.value)]))
    #expect(error == InjectionError(.invalidAnnotation, example.message))
  }

  @Test("the first invalid annotation in validation order is reported")
  func firstInvalidWins() {
    let error = Self.error(
      Self.pod(annotations: [
        ("sidecar.istio.io/proxyCPU", "lots"), ("sidecar.istio.io/interceptionMode", "BOTH"),
      ]))
    #expect(error?.message.hasPrefix("annotation sidecar.istio.io/interceptionMode:") == true)
  }

  @Test("a pod that is skipped is never rejected for its annotations")
  func skipBeforeValidation() throws {
    var pod = Self.pod(annotations: [
      ("sidecar.istio.io/inject", "false"), ("sidecar.istio.io/proxyCPU", "lots"),
    ])
    #expect(
      try PodInjector.inject(pod, context: InjectionContext(namespace: "default"))
        == .skipped(reason: #"the pod has the annotation sidecar.istio.io/inject: "false""#))
    pod["spec"]?["hostNetwork"] = true
    #expect(Self.error(pod) == nil)
  }

  @Test("objects that are not pods are refused")
  func invalidObjects() {
    #expect(Self.error("text") == InjectionError(.invalidObject, "the object to inject is not a JSON object"))
    #expect(
      Self.error(["metadata": ["name": "x"]])
        == InjectionError(.invalidObject, "spec is missing or not an object: not a pod or pod template"))
    #expect(
      Self.error(["spec": ["initContainers": []]])
        == InjectionError(.invalidObject, "spec.containers is missing: not a pod or pod template"))
    #expect(
      Self.error(["spec": ["containers": [["image": "x"]]]])
        == InjectionError(.invalidObject, "spec.containers[0] is not a container with a name"))
    #expect(
      Self.error([
        "metadata": ["annotations": ["prometheus.io/port": 8080]], "spec": ["containers": [["name": "a"]]],
      ])
        == InjectionError(.invalidObject, #"metadata.annotations["prometheus.io/port"] is not a string"#))
  }

  @Test("user-defined sidecar containers and clashing volumes are refused")
  func conflicts() {
    let proxy = Self.pod(
      annotations: [], containers: [["name": "app"], ["name": "istio-proxy", "image": "auto"]])
    #expect(
      Self.error(proxy)
        == InjectionError(
          .invalidObject,
          "the pod already has a container named istio-proxy but no sidecar.istio.io/status annotation; remove it (Pilotfish does not merge user-defined sidecar containers)"
        ))
    var volume = Self.pod(annotations: [])
    volume["spec"]?["volumes"] = [["name": "istio-envoy", "emptyDir": [:]]]
    #expect(
      Self.error(volume)
        == InjectionError(
          .invalidObject, "the pod already has a volume named istio-envoy, which the sidecar needs"))
    var user = Self.pod(annotations: [("sidecar.istio.io/userVolume", #"{"data":{"emptyDir":{}}}"#)])
    user["spec"]?["volumes"] = [["name": "data", "emptyDir": [:]]]
    #expect(
      Self.error(user)
        == InjectionError(
          .invalidAnnotation,
          #"annotation sidecar.istio.io/userVolume: volume "data" already exists in the pod"#))
  }

  @Test("errors compare on code and message only")
  func equalityIgnoresCause() {
    struct Cause: Error {}
    #expect(InjectionError(.invalidObject, "x", cause: Cause()) == InjectionError(.invalidObject, "x"))
    #expect(InjectionError(.invalidObject, "x") != InjectionError(.invalidAnnotation, "x"))
    #expect(InjectionError(.invalidObject, "x", cause: Cause()).description.hasPrefix("x ("))
  }
}
