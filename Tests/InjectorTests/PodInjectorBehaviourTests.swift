import PilotfishKit
import Testing

@testable import Injector

/// Behaviour that the goldens do not show on their own: re-injection under new settings, taking apart a
/// pod injected by Istio, and the corners of probes and metrics.
@Suite("Pod injection behaviour")
struct PodInjectorBehaviourTests {
  static let pod: JSONValue = [
    "apiVersion": "v1", "kind": "Pod",
    "metadata": ["name": "web", "labels": ["app": "web"]],
    "spec": [
      "containers": [
        [
          "name": "web", "image": "web:1", "ports": [["name": "http", "containerPort": 8080]],
          "readinessProbe": ["httpGet": ["path": "/ready", "port": "8080"]],
        ]
      ]
    ],
  ]

  static func inject(_ pod: JSONValue, _ configure: (inout InjectorSettings) -> Void = { _ in }) throws
    -> JSONValue
  {
    var settings = InjectorSettings()
    configure(&settings)
    guard
      case .injected(let result) = try PodInjector.inject(
        pod, context: InjectionContext(namespace: "default", settings: settings))
    else {
      Issue.record("not injected")
      return pod
    }
    return result
  }

  static func container(_ pod: JSONValue, _ name: String) -> JSONValue? {
    ((pod[path: "spec", "containers"]?.arrayValue ?? [])
      + (pod[path: "spec", "initContainers"]?.arrayValue ?? []))
      .first { $0["name"]?.stringValue == name }
  }

  static func env(_ pod: JSONValue, _ name: String) -> String? {
    container(pod, "istio-proxy")?["env"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]?
      .stringValue
  }

  @Test("re-injecting under new settings gives what injecting the original under them gives")
  func reinjectWithNewSettings() throws {
    let classic = try Self.inject(Self.pod)
    let native = try Self.inject(classic) {
      $0.nativeSidecars = .enabled; $0.revision = "blue"
    }
    #expect(
      native
        == (try Self.inject(Self.pod) {
          $0.nativeSidecars = .enabled; $0.revision = "blue"
        }))
    #expect(Self.container(native, "istio-proxy")?["restartPolicy"] == "Always")
    #expect(native[path: "spec", "containers"]?.arrayValue?.count == 1)
  }

  @Test("a port given as digits in a string is resolved, and comes back as a string")
  func numericStringPort() throws {
    let injected = try Self.inject(Self.pod)
    #expect(
      Self.env(injected, "ISTIO_KUBE_APP_PROBERS")
        == #"{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}"#)
    #expect(PodInjector.uninject(injected) == Self.pod)
  }

  @Test("status port 0: no proxy probes, no probe rewrite, no metrics merge, no -d entry")
  func statusPortZero() throws {
    var pod = Self.pod
    pod["metadata"]?["annotations"] = ["status.sidecar.istio.io/port": "0"]
    let injected = try Self.inject(pod)
    let proxy = Self.container(injected, "istio-proxy")
    #expect(proxy?["readinessProbe"] == nil)
    #expect(proxy?["startupProbe"] == nil)
    #expect(Self.env(injected, "ISTIO_KUBE_APP_PROBERS") == nil)
    #expect(injected[path: "metadata", "annotations", "prometheus.io/port"] == nil)
    let args = Self.container(injected, "istio-init")?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
    #expect(args.firstIndex(of: "-d").map { args[$0 + 1] } == "15090,15021")
  }

  @Test("a pod injected by Istio (no Pilotfish record) is taken apart as far as its status says")
  func uninjectIstioPod() throws {
    // Shaped like Istio's output: status without the pilotfish record, app probers and scrape settings in env.
    let istio: JSONValue = [
      "apiVersion": "v1", "kind": "Pod",
      "metadata": [
        "name": "web",
        "annotations": [
          "prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
          "prometheus.io/scrape": "true",
          "sidecar.istio.io/status":
            #"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"default"}"#,
        ],
        "labels": ["app": "web", "security.istio.io/tlsMode": "istio"],
      ],
      "spec": [
        "initContainers": [["name": "istio-init", "image": "proxyv2"]],
        "containers": [
          [
            "name": "web", "image": "web:1",
            "livenessProbe": [
              "httpGet": ["path": "/app-health/web/livez", "port": 15020], "periodSeconds": 3,
            ],
          ],
          [
            "name": "istio-proxy", "image": "proxyv2",
            "env": [
              [
                "name": "ISTIO_KUBE_APP_PROBERS",
                "value": #"{"/app-health/web/livez":{"tcpSocket":{"port":8080}}}"#,
              ],
              [
                "name": "ISTIO_PROMETHEUS_ANNOTATIONS",
                "value": #"{"scrape":"true","path":"","port":"9100"}"#,
              ],
            ],
          ],
        ],
        "volumes": [["name": "istio-envoy", "emptyDir": [:]], ["name": "data", "emptyDir": [:]]],
      ],
    ]
    let plain = PodInjector.uninject(istio)
    #expect(
      plain == [
        "apiVersion": "v1", "kind": "Pod",
        "metadata": [
          "name": "web",
          "annotations": ["prometheus.io/port": "9100", "prometheus.io/scrape": "true"],
          "labels": ["app": "web", "security.istio.io/tlsMode": "istio"],
        ],
        "spec": [
          "containers": [
            [
              "name": "web", "image": "web:1",
              "livenessProbe": ["tcpSocket": ["port": 8080], "periodSeconds": 3],
            ]
          ],
          "volumes": [["name": "data", "emptyDir": [:]]],
        ],
      ])
    // And injecting it again works from there.
    let again = try Self.inject(istio)
    #expect(again == (try Self.inject(plain)))
  }

  @Test("the status annotation of a native sidecar has Istio's shape")
  func statusShape() throws {
    let injected = try Self.inject(Self.pod) { $0.nativeSidecars = .enabled }
    let status = injected[path: "metadata", "annotations", "sidecar.istio.io/status"]?.stringValue ?? ""
    #expect(
      status.hasPrefix(
        #"{"initContainers":["istio-init","istio-proxy"],"containers":null,"volumes":["workload-socket","#))
    #expect(status.contains(#""imagePullSecrets":null,"revision":"default","#))
  }

  @Test("existing kubectl default-container and canonical labels are kept")
  func keepsUserChoices() throws {
    var pod = Self.pod
    pod["metadata"]?["labels"] = [
      "app": "web", "service.istio.io/canonical-name": "storefront", "version": "v7",
    ]
    pod["metadata"]?["annotations"] = ["kubectl.kubernetes.io/default-container": "web"]
    let injected = try Self.inject(pod)
    #expect(injected[path: "metadata", "labels", "service.istio.io/canonical-name"] == "storefront")
    #expect(injected[path: "metadata", "labels", "service.istio.io/canonical-revision"] == "v7")
    #expect(PodInjector.uninject(injected) == pod)
  }

  @Test("settings: CA address, cluster, mesh, trust domain and proxy metadata reach the proxy")
  func settingsReachTheProxy() throws {
    let injected = try Self.inject(Self.pod) {
      $0.caAddress = "ca.example:15012"
      $0.clusterID = "east"
      $0.meshID = ""
      $0.trustDomain = "example.org"
      $0.proxyMetadata = ["ZZ": "last", "CA_ADDR": "override.example:15012"]
      $0.proxyImage = "registry.example/pilotfish:1"
    }
    #expect(Self.env(injected, "CA_ADDR") == "override.example:15012")
    #expect(Self.env(injected, "ISTIO_META_CLUSTER_ID") == "east")
    #expect(Self.env(injected, "ISTIO_META_MESH_ID") == "example.org")
    #expect(Self.env(injected, "TRUST_DOMAIN") == "example.org")
    #expect(
      Self.container(injected, "istio-proxy")?["env"]?.arrayValue?.last?["name"] == "ISTIO_KUBE_APP_PROBERS")
    #expect(Self.container(injected, "istio-init")?["image"] == "registry.example/pilotfish:1")
    #expect(
      Self.container(injected, "istio-init")?["env"] == [
        ["name": "CA_ADDR", "value": "override.example:15012"], ["name": "ZZ", "value": "last"],
      ])
  }

  @Test("native sidecars ignore holdApplicationUntilProxyStarts: the kubelet already starts them first")
  func nativeBeatsHold() throws {
    let injected = try Self.inject(Self.pod) {
      $0.nativeSidecars = .enabled
      $0.holdApplicationUntilProxyStarts = true
    }
    let lifecycle = Self.container(injected, "istio-proxy")?["lifecycle"]
    #expect(lifecycle?["postStart"] == nil)
    #expect(
      lifecycle?[path: "preStop", "exec", "command"]
        == ["pilotfish", "request", "--debug-port=15020", "POST", "drain"])
    #expect(
      injected[path: "spec", "initContainers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == [
        "istio-init", "istio-proxy",
      ])
  }

  @Test("the sidecar template may be named; an explicit nativeSidecar annotation beats the settings")
  func templatesAndNativeAnnotation() throws {
    var pod = Self.pod
    pod["metadata"]?["annotations"] = [
      "inject.istio.io/templates": "sidecar", "sidecar.istio.io/nativeSidecar": "false",
    ]
    let injected = try Self.inject(pod) { $0.nativeSidecars = .enabled }
    #expect(Self.container(injected, "istio-proxy")?["restartPolicy"] == nil)
    #expect(injected[path: "spec", "containers"]?.arrayValue?.last?["name"] == "istio-proxy")
  }
}
