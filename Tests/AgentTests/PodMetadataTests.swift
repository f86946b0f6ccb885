import Foundation
import Testing

@testable import Agent

@Suite("PodMetadata")
struct PodMetadataTests {
  @Test("downward-API values use Go quoting")
  func goQuoting() throws {
    #expect(DownwardAPIFile.unquote(#""plain""#) == "plain")
    #expect(DownwardAPIFile.unquote(#""a\"b\\c\nd\te""#) == "a\"b\\c\nd\te")
    #expect(DownwardAPIFile.unquote(#""\x41\u00e9\U0001F600\101""#) == "Aé😀A")
    #expect(DownwardAPIFile.unquote(#""unterminated"#) == nil)
    #expect(DownwardAPIFile.unquote(#""bad \q escape""#) == nil)
    let parsed = try DownwardAPIFile.parse(
      "app=\"web\"\nconfig=\"{\\\"concurrency\\\": 3}\"\n\n", source: "labels")
    #expect(parsed == ["app": "web", "config": "{\"concurrency\": 3}"])
  }

  @Test("environment plus downward-API files")
  func fromEnvironment() throws {
    let root = try TempRoot()
    defer { root.remove() }
    try root.write(
      "etc/istio/pod/labels",
      """
      app="reviews"
      pod-template-hash="7f9c"
      security.istio.io/tlsMode="istio"
      """)
    try root.write(
      "etc/istio/pod/annotations",
      #"""
      kubectl.kubernetes.io/default-container="reviews"
      proxy.istio.io/config="{\"concurrency\": 4, \"proxyMetadata\": {\"ISTIO_META_FROM_ANNOTATION\": \"yes\"}}"
      """#)
    let env = [
      "POD_NAME": "reviews-v1-7f9c-xyz", "POD_NAMESPACE": "bookinfo", "INSTANCE_IP": "10.0.0.7",
      "SERVICE_ACCOUNT": "bookinfo-reviews", "HOST_IP": "192.168.1.1",
      "ISTIO_META_CLUSTER_ID": "east", "ISTIO_META_MESH_ID": "mesh1",
      "ISTIO_META_WORKLOAD_NAME": "reviews-v1",
      "ISTIO_META_OWNER": "kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v1",
      "ISTIO_META_APP_CONTAINERS": "reviews", "ISTIO_METAJSON_LABELS": #"{"extra":"x"}"#,
      "ISTIO_METAJSON_PLATFORM_METADATA": #"{"gcp_project":"p"}"#, "TRUST_DOMAIN": "example.org",
    ]
    let pod = try PodMetadata.fromEnvironment(env, root: root.path)
    #expect(pod.name == "reviews-v1-7f9c-xyz")
    #expect(pod.namespace == "bookinfo")
    #expect(pod.instanceIPs == ["10.0.0.7"])
    #expect(pod.serviceAccount == "bookinfo-reviews")
    #expect(pod.hostIP == "192.168.1.1")
    #expect(pod.clusterID == "east")
    #expect(pod.meshID == "mesh1")
    #expect(pod.trustDomain == "example.org")
    #expect(pod.workloadName == "reviews-v1")
    #expect(pod.labels["app"] == "reviews")
    #expect(pod.labels["extra"] == "x")
    #expect(pod.annotations["kubectl.kubernetes.io/default-container"] == "reviews")
    #expect(pod.meta["APP_CONTAINERS"] == .string("reviews"))
    #expect(pod.meta["PLATFORM_METADATA"] == .object(["gcp_project": .string("p")]))
    #expect(pod.meta["FROM_ANNOTATION"] == .string("yes"))
    #expect(pod.proxyConfig.concurrency == 4)
    #expect(pod.domain == "bookinfo.svc.cluster.local")

    let generator = try BootstrapGenerator(pod: pod)
    #expect(generator.nodeID == "sidecar~10.0.0.7~reviews-v1-7f9c-xyz.bookinfo~bookinfo.svc.cluster.local")
    #expect(generator.nodeCluster == "reviews.bookinfo")
    let meta = generator.nodeMetadata
    #expect(meta["LABELS"]?["pod-template-hash"] == nil)
    #expect(meta["OWNER"] == .string("kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v1"))
  }

  @Test("missing downward-API files are empty, not errors")
  func missingDownwardFiles() throws {
    let root = try TempRoot()
    defer { root.remove() }
    let pod = try PodMetadata.fromEnvironment(["POD_NAME": "a", "POD_NAMESPACE": "b"], root: root.path)
    #expect(pod.labels.isEmpty && pod.annotations.isEmpty)
    #expect(pod.instanceIPs == ["127.0.0.1"])
    #expect(try BootstrapGenerator(pod: pod).nodeCluster == "a.b")
  }

  @Test("the whole pod from pod.json")
  func fromPodFile() throws {
    let root = try TempRoot()
    defer { root.remove() }
    try root.write("pod.json", samplePodJSON)
    let pod = try PodMetadata.fromPodFile(path: root.path + "/pod.json", environment: [:])
    #expect(pod.name == "web-5d9f8-abcde")
    #expect(pod.namespace == "shop")
    #expect(pod.instanceIPs == ["10.1.2.3", "fd00::3"])
    #expect(pod.serviceAccount == "web-sa")
    #expect(pod.nodeName == "node-1")
    #expect(pod.hostIP == "192.168.0.10")
    #expect(pod.workloadName == "web")
    #expect(pod.owner == "kubernetes://apis/apps/v1/namespaces/shop/deployments/web")
    #expect(pod.proxyConfig.concurrency == 2)
    #expect(pod.proxyConfig.proxyStatsMatcher.inclusionPrefixes == ["upstream_rq"])
  }

  @Test("ProxyConfig layers: defaults, mesh config, PROXY_CONFIG, then the annotation")
  func layering() throws {
    let root = try TempRoot()
    defer { root.remove() }
    try root.write(
      "etc/istio/config/mesh",
      """
      defaultConfig:
        drainDuration: 30s
        statusPort: 15030
        discoveryAddress: mesh-file:15012
      """)
    try root.write(
      "etc/istio/pod/annotations",
      #"""
      proxy.istio.io/config="concurrency: 8\nproxyMetadata:\n  B: annotation\n  C: annotation\n"
      """#)
    let env = [
      "POD_NAME": "p", "POD_NAMESPACE": "n",
      "PROXY_CONFIG": #"""
      {"discoveryAddress": "istiod.other:15012", "concurrency": 2, "terminationDrainDuration": "20s",
       "proxyMetadata": {"A": "env", "B": "env"}, "tracing": {"zipkin": {"address": "z:9411"}}}
      """#,
    ]
    let pod = try PodMetadata.fromEnvironment(
      env, root: root.path, meshConfigPath: "etc/istio/config/mesh")
    let pc = pod.proxyConfig
    #expect(pc.proxyAdminPort == 15000)  // mesh default
    #expect(pc.drainDuration == .seconds(30))  // mesh config file
    #expect(pc.statusPort == 15030)  // mesh config file
    #expect(pc.discoveryAddress == "istiod.other:15012")  // PROXY_CONFIG over the mesh file
    #expect(pc.terminationDrainDuration == .seconds(20))  // PROXY_CONFIG
    #expect(pc.concurrency == 8)  // annotation over PROXY_CONFIG
    #expect(pc.proxyMetadata == ["A": "env", "B": "annotation", "C": "annotation"])  // maps merge
    #expect(pc.tracing != nil)
    #expect(ProxyConfig.meshDefaults.tracing == nil)  // tracing is off by default
    #expect(ProxyConfig.meshDefaults.discoveryAddress == "istiod.istio-system.svc:15012")
    #expect(ProxyConfig.meshDefaults.drainDuration == .seconds(45))
    #expect(ProxyConfig.meshDefaults.terminationDrainDuration == .seconds(5))
    #expect(ProxyConfig.meshDefaults.statusPort == 15020)
  }

  @Test("annotation overrides and ISTIO_CPU_LIMIT")
  func overrides() throws {
    let pod = try PodMetadata.fromPod(
      .object([
        "metadata": .object([
          "name": .string("p"),
          "annotations": .object([
            "sidecar.istio.io/discoveryAddress": .string("istiod.custom:15012"),
            "status.sidecar.istio.io/port": .string("15999"),
          ]),
        ])
      ]), source: "pod.json", environment: ["ISTIO_CPU_LIMIT": "3"])
    #expect(pod.proxyConfig.discoveryAddress == "istiod.custom:15012")
    #expect(pod.proxyConfig.statusPort == 15999)
    #expect(pod.proxyConfig.concurrency == 3)
    #expect(pod.namespace == "default")
  }

  @Test("errors name the variable, file or annotation")
  func errors() throws {
    let root = try TempRoot()
    defer { root.remove() }
    func envError(_ env: [String: String]) -> AgentError? {
      do {
        _ = try PodMetadata.fromEnvironment(env, root: root.path)
        return nil
      } catch { return error }
    }
    #expect(
      envError(["PROXY_CONFIG": "{not json"])
        == AgentError(.invalidEnvironment, "PROXY_CONFIG: malformed ProxyConfig"))
    #expect(
      envError(["PROXY_CONFIG": #"{"drainDuration": "soon"}"#])
        == AgentError(
          .invalidEnvironment,
          #"PROXY_CONFIG: field drainDuration: invalid duration "soon" (e.g. 45s, 1m30s; at most 2562047h)"#))
    #expect(
      envError(["PROXY_CONFIG": #"{"statusPort": 70000}"#])
        == AgentError(.invalidEnvironment, "PROXY_CONFIG: field statusPort: port 70000 out of range"))
    #expect(
      envError(["ISTIO_METAJSON_FOO": "[1,"])
        == AgentError(.invalidEnvironment, "ISTIO_METAJSON_FOO: malformed JSON"))
    #expect(
      envError(["ISTIO_CPU_LIMIT": "two"])
        == AgentError(.invalidEnvironment, #"ISTIO_CPU_LIMIT: expected an integer, got "two""#))

    try root.write("etc/istio/pod/annotations", "proxy.istio.io/config=\"[1, 2]\"\n")
    #expect(
      envError([:])
        == AgentError(
          .invalidAnnotation,
          "\(root.path)/etc/istio/pod/annotations proxy.istio.io/config: ProxyConfig must be an object"))

    try root.write("etc/istio/pod/labels", "app=\"web\"\nbroken line\n")
    #expect(
      envError([:])
        == AgentError(.invalidFile, "\(root.path)/etc/istio/pod/labels:2: expected key=\"value\""))

    let missing = root.path + "/nope.json"
    #expect(throws: AgentError(.invalidFile, "\(missing): pod metadata file not found")) {
      try PodMetadata.fromPodFile(path: missing, environment: [:])
    }
    try root.write("bad.json", "{")
    #expect(throws: AgentError(.invalidFile, "\(root.path)/bad.json: malformed JSON")) {
      try PodMetadata.fromPodFile(path: root.path + "/bad.json", environment: [:])
    }
    #expect(throws: AgentError(.invalidFile, "pod.json: metadata.name is required")) {
      try PodMetadata.fromPod(.object([:]), source: "pod.json", environment: [:])
    }
    let pod = try PodMetadata.fromPod(
      .object(["metadata": .object(["name": .string("p")])]), source: "pod.json",
      environment: ["ENVOY_STATUS_PORT": "15020"])
    #expect(
      throws: AgentError(
        .invalidEnvironment,
        "port collision: proxyAdminPort 15000, statusPort 15020, ENVOY_STATUS_PORT 15020")
    ) { try BootstrapGenerator(pod: pod) }
  }

  /// Crashed the PodMetadata fuzz target (hack/fuzz.sh): numbers where strings are expected went through
  /// Int(_:), which traps for 1e300 or YAML's .inf (a pod label, a proxyMetadata value, fileFlushMinSizeKb
  /// in the annotation).
  @Test("numbers out of Int's range in the pod and its ProxyConfig are values or errors, never traps")
  func hugeNumbers() throws {
    let pod = try PodMetadata.fromPod(
      .object([
        "metadata": .object([
          "name": .string("p"), "labels": .object(["big": .number("1e300"), "small": .number("7")]),
          "annotations": .object(["proxy.istio.io/config": .string("proxyMetadata: {INF: .inf}")]),
        ])
      ]), source: "pod.json", environment: [:])
    #expect(pod.labels["big"] == "1e+300")
    #expect(pod.labels["small"] == "7")
    #expect(pod.environment["INF"] == "Infinity")  // YAML .inf is proto3 JSON's "Infinity"

    let root = try TempRoot()
    defer { root.remove() }
    try root.write(
      "pod.json",
      #"{"metadata": {"name": "p", "annotations": {"proxy.istio.io/config": "fileFlushMinSizeKb: 1e300"}}}"#)
    var options = SidecarOptions(environment: ["INSTANCE_IP": "10.0.0.1"])
    options.root = root.path
    options.podMetadataPath = root.path + "/pod.json"
    options.binaryPath = "/bin/true"
    #expect(
      throws: AgentError(
        .invalidEnvironment, "ProxyConfig fileFlushMinSizeKb: 1e+300 is not a whole number of KiB up to 2^30")
    ) { try SidecarSettings.resolve(options) }
  }

  @Test("Go durations")
  func durations() {
    #expect(GoDuration.parse("45s") == .seconds(45))
    #expect(GoDuration.parse("1m30s") == .seconds(90))
    #expect(GoDuration.parse("250ms") == .milliseconds(250))
    #expect(GoDuration.parse("0.250s") == .milliseconds(250))
    #expect(GoDuration.parse("abc") == nil)
    #expect(GoDuration.format(.milliseconds(250)) == "0.25s")
    // Found by the Durations fuzz target (hack/fuzz.sh, "818188181.m"): past Int64 nanoseconds (about
    // 292 years) the parser trapped.
    #expect(GoDuration.parse("818188181.m") == nil)
    #expect(GoDuration.parse("2562048h") == nil)
    #expect(GoDuration.parse("2562047h47m16s") == .seconds(9_223_372_036))
    #expect(GoDuration.parse("2562047h2562047h") == nil)
    #expect(
      throws: AgentError(
        .invalidEnvironment,
        #"PROXY_CONFIG: field drainDuration: invalid duration "99999999999999999999s" (e.g. 45s, 1m30s; at most 2562047h)"#
      )
    ) {
      try PodMetadata.fromEnvironment(
        ["PROXY_CONFIG": #"{"drainDuration": "99999999999999999999s"}"#], root: "/nonexistent")
    }
  }
}
