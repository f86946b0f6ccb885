import Foundation
import PilotfishKit
import Testing

@testable import Injector

/// `pilotfish inject` as library code: which documents are mutated, what passes through, the output
/// format, owners and namespaces, errors naming the document; the injector config file; and the
/// manifests under deploy/ checked by a third-party Kubernetes schema validator.
@Suite("Manifests (pilotfish inject)")
struct DocumentsTests {
  static func injector(namespace: String = "default", uninject: Bool = false) -> ManifestInjector {
    ManifestInjector(
      options: .init(defaultNamespace: namespace, uninject: uninject, settings: InjectorSettings()))
  }

  static func proxy(in pod: JSONValue?) -> JSONValue? {
    let containers =
      (pod?[path: "spec", "containers"]?.arrayValue ?? [])
      + (pod?[path: "spec", "initContainers"]?.arrayValue ?? [])
    return containers.first { $0["name"] == "istio-proxy" }
  }

  static func env(_ name: String, of container: JSONValue?) -> String? {
    container?["env"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]?.stringValue
  }

  static let multiDocument = """
    # a comment before the first document
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: prod
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: nginx:1.25
            ports: [{containerPort: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: prod}
    spec:
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: opted-out
      labels: {sidecar.istio.io/inject: "false"}
    spec:
      containers: [{name: app, image: busybox}]
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: plain
    spec:
      containers: [{name: app, image: busybox}]
    """

  @Test func yamlStreamInYamlStreamOut() throws {
    let result = try Self.injector(namespace: "apps").process(Self.multiDocument)
    let input = try JSONValue.parseYAMLDocuments(Self.multiDocument)
    let output = try Manifest(parsing: result.text)
    #expect(output.format == .yaml)
    #expect(output.documents.count == 4)
    #expect(result.text.components(separatedBy: "\n---\n").count == 4)

    let template = output.documents[0][path: "spec", "template"]
    let proxy = Self.proxy(in: template)
    #expect(proxy != nil)
    #expect(
      Self.env("ISTIO_META_OWNER", of: proxy) == "kubernetes://apis/apps/v1/namespaces/prod/deployments/web")
    #expect(Self.env("ISTIO_META_WORKLOAD_NAME", of: proxy) == "web")

    #expect(output.documents[1] == input[1], "a Service passes through")
    #expect(output.documents[2] == input[2], "a skipped pod passes through")
    #expect(result.notes.count == 1)
    #expect(result.notes.first?.hasPrefix("document 3 (Pod opted-out): not injected: ") == true)

    // A Pod without a namespace gets the default one in its owner.
    #expect(
      Self.env("ISTIO_META_OWNER", of: Self.proxy(in: output.documents[3]))
        == "kubernetes://apis/v1/namespaces/apps/pods/plain")
  }

  @Test func jsonInJsonOutWithAList() throws {
    let list: JSONValue = [
      "apiVersion": "v1", "kind": "List",
      "items": [
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["k": "v"]],
        [
          "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ["name": "db"],
          "spec": [
            "template": ["metadata": [:], "spec": ["containers": [["name": "db", "image": "postgres"]]]]
          ],
        ],
      ],
    ]
    let result = try Self.injector().process(list.prettyJSONText)
    #expect(result.text.hasPrefix("{"))
    let output = try JSONValue.parseYAML(result.text)
    #expect(output[path: "items"]?.arrayValue?[0] == list[path: "items"]?.arrayValue?[0])
    let template = output["items"]?.arrayValue?[1][path: "spec", "template"]
    #expect(
      Self.env("ISTIO_META_OWNER", of: Self.proxy(in: template))
        == "kubernetes://apis/apps/v1/namespaces/default/statefulsets/db")
  }

  @Test(arguments: [
    ("Deployment", "apps/v1", ["spec", "template"]),
    ("StatefulSet", "apps/v1", ["spec", "template"]),
    ("DaemonSet", "apps/v1", ["spec", "template"]),
    ("ReplicaSet", "apps/v1", ["spec", "template"]),
    ("ReplicationController", "v1", ["spec", "template"]),
    ("Job", "batch/v1", ["spec", "template"]),
    ("CronJob", "batch/v1", ["spec", "jobTemplate", "spec", "template"]),
  ])
  func everyWorkloadKindIsInjected(kind: String, apiVersion: String, path: [String]) throws {
    let pod: JSONValue = [
      "metadata": ["labels": ["app": "w"]], "spec": ["containers": [["name": "w", "image": "w"]]],
    ]
    var workload: JSONValue = [
      "apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": ["name": "w"],
    ]
    workload = Self.setting(workload, at: path[...], to: pod)
    let result = try Self.injector().process(workload.yamlText)
    let output = try JSONValue.parseYAML(result.text)
    let template = path.reduce(Optional(output)) { $0?[$1] }
    #expect(
      Self.env("ISTIO_META_OWNER", of: Self.proxy(in: template))
        == "kubernetes://apis/\(apiVersion)/namespaces/default/\(kind.lowercased())s/w")
  }

  static func setting(_ object: JSONValue, at path: ArraySlice<String>, to value: JSONValue) -> JSONValue {
    guard let key = path.first else { return value }
    var result = object
    result[key] = setting(object[key] ?? .emptyObject, at: path.dropFirst(), to: value)
    return result
  }

  @Test func uninjectRestoresTheInput() throws {
    let injected = try Self.injector().process(Self.multiDocument)
    let restored = try Self.injector(uninject: true).process(injected.text)
    let original = try JSONValue.parseYAMLDocuments(Self.multiDocument)
    #expect(try Manifest(parsing: restored.text).documents.map(\.canonical) == original.map(\.canonical))
  }

  @Test func errorsNameTheDocumentAndTheObject() {
    let text = """
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: fine}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web}
      spec:
        template:
          metadata:
            annotations: {traffic.sidecar.istio.io/excludeOutboundIPRanges: 10.0.0.0/33}
          spec:
            containers: [{name: web, image: nginx}]
      """
    #expect(
      throws: ManifestError(
        .injection,
        #"document 2 (Deployment web): annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "10.0.0.0/33" is not a CIDR"#
      )
    ) { try Self.injector().process(text) }

    #expect(throws: ManifestError(.malformed, "document 1 (Deployment web): spec.template is not an object"))
    {
      try Self.injector().process("{kind: Deployment, metadata: {name: web}, spec: {template: 3}}")
    }
    #expect(throws: ManifestError(.malformed, "document 1 (List): items is not a list")) {
      try Self.injector().process("{\"kind\": \"List\", \"items\": 3}")
    }
    #expect(throws: ManifestError.self) { try Self.injector().process("kind: [unclosed") }
  }

  @Test func listItemErrorsNameTheItem() {
    let text = """
      kind: List
      items:
      - {kind: Pod, metadata: {name: a, annotations: {status.sidecar.istio.io/port: "99999"}}, spec: {containers: [{name: a, image: a}]}}
      """
    do {
      _ = try Self.injector().process(text)
      Issue.record("expected an error")
    } catch {
      #expect(
        error.message.hasPrefix("document 1 (List) items[0] (Pod a): annotation status.sidecar.istio.io/port")
      )
    }
  }

  @Test func otherDocumentsAndEmptyInputPassThrough() throws {
    #expect(try Self.injector().process("").text == "")
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: Opaque\n"
    #expect(try Self.injector().process(text).text == text)
  }

  @Test func theSampleManifestInjects() throws {
    let sample = ExternalTools.repositoryRoot.appendingPathComponent("deploy/samples/httpbin.yaml").path
    let result = try Self.injector().process(try Manifest.readText(from: sample))
    let deployment = try Manifest(parsing: result.text).documents.first { $0["kind"] == "Deployment" }
    #expect(Self.proxy(in: deployment?[path: "spec", "template"]) != nil)
  }

  // MARK: - Injector config file

  @Test func configFileSetsFields() throws {
    let settings = try InjectorConfigFile.load(
      """
      proxyImage: registry.example/pilotfish:1.0
      injectByDefault: false
      nativeSidecars: enabled
      statusPort: 15021
      kubeletMinorVersion: 33
      proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", COUNT: 3}
      cniMode: true
      """, source: "cfg.yaml")
    var expected = InjectorSettings()
    expected.proxyImage = "registry.example/pilotfish:1.0"
    expected.injectByDefault = false
    expected.nativeSidecars = .enabled
    expected.statusPort = 15021
    expected.kubeletMinorVersion = 33
    expected.proxyMetadata = ["ISTIO_META_DNS_CAPTURE": "true", "COUNT": "3"]
    expected.cniMode = true
    #expect(settings == expected)
    #expect(try InjectorConfigFile.load("", source: "empty.yaml") == InjectorSettings())
  }

  @Test(arguments: [
    ("proxyimage: x", #"cfg.yaml: unknown field "proxyimage"; known fields: proxyImage,"#),
    ("statusPort: 70000", #"cfg.yaml: field "statusPort": expected a port number 0-65535, got 70000"#),
    ("injectByDefault: maybe", #"cfg.yaml: field "injectByDefault": expected true or false, got "maybe""#),
    (
      "nativeSidecars: sometimes",
      #"cfg.yaml: field "nativeSidecars": expected enabled, disabled or auto, got "sometimes""#
    ),
    ("proxyMetadata: {A: [1]}", #"cfg.yaml: field "proxyMetadata.A": expected a string, got [1]"#),
    ("- a list", "cfg.yaml: expected a mapping of setting names to values"),
  ])
  func configFileErrorsNameTheField(text: String, message: String) {
    do {
      _ = try InjectorConfigFile.load(text, source: "cfg.yaml")
      Issue.record("expected: \(message)")
    } catch {
      #expect(error.code == .configuration)
      #expect(error.message.hasPrefix(message), "\(error.message)")
    }
  }

  @Test func flagsOverrideTheConfigFile() throws {
    let directory = try ExternalTools.temporaryDirectory("pf-config")
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("injector.yaml")
    try "proxyImage: from-file\nrevision: canary\n".write(to: file, atomically: true, encoding: .utf8)
    let settings = try InjectorConfigFile.resolve(
      configPath: file.path, proxyImage: "from-flag", nativeSidecars: "disabled", revision: nil)
    #expect(settings.proxyImage == "from-flag")
    #expect(settings.revision == "canary")
    #expect(settings.nativeSidecars == .disabled)
    #expect(throws: ManifestError.self) {
      try InjectorConfigFile.resolve(
        configPath: directory.appendingPathComponent("missing").path, proxyImage: nil, nativeSidecars: nil,
        revision: nil)
    }
  }

  // MARK: - deploy/

  static let deploy = ExternalTools.repositoryRoot.appendingPathComponent("deploy")

  /// Every YAML file under deploy/ that holds Kubernetes objects (kustomization.yaml is kustomize's).
  static func manifestFiles() throws -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: deploy.path)
    var files: [String] = []
    while let path = enumerator?.nextObject() as? String {
      if (path.hasSuffix(".yaml") || path.hasSuffix(".yml")) && !path.hasSuffix("kustomization.yaml") {
        files.append(path)
      }
    }
    return files.sorted()
  }

  @Test(
    "deploy/ manifests pass kubernetes-validate --strict",
    .enabled(if: ExternalTools.python(module: "kubernetes_validate").shouldRun))
  func deployManifestsAreValid() throws {
    guard ExternalTools.python(module: "kubernetes_validate").require() else { return }
    let files = try Self.manifestFiles()
    #expect(files.count >= 7)
    for version in ["1.30.0", "1.33.0"] {
      let result = try ExternalTools.run(
        [
          ExternalTools.python, "-m", "kubernetes_validate", "-k", version, "--strict", "--quiet",
          "--no-warn",
        ] + files,
        directory: Self.deploy.path)
      #expect(result.status == 0, "kubernetes-validate \(version): \(result.stdout)\(result.stderr)")
    }
  }

  @Test func kustomizationListsTheWebhookManifests() throws {
    let kustomization = try JSONValue.parseYAML(
      try String(contentsOf: Self.deploy.appendingPathComponent("kustomization.yaml"), encoding: .utf8))
    let resources = kustomization["resources"]?.arrayValue?.compactMap(\.stringValue) ?? []
    #expect(Set(resources) == Set(try Self.manifestFiles().filter { !$0.hasPrefix("samples/") }))
  }

  @Test func webhookConfigurationFollowsTheContract() throws {
    let text = try String(
      contentsOf: Self.deploy.appendingPathComponent("webhook/mutatingwebhookconfiguration.yaml"),
      encoding: .utf8)
    let configuration = try JSONValue.parseYAML(text)
    let webhooks = configuration["webhooks"]?.arrayValue ?? []
    #expect(webhooks.count == 4)
    for webhook in webhooks {
      #expect(webhook["failurePolicy"] == "Fail")
      #expect(webhook["sideEffects"] == "None")
      #expect(webhook["reinvocationPolicy"] == "Never")
      #expect(webhook["admissionReviewVersions"] == ["v1"])
      #expect(
        webhook["rules"] == [
          [
            "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
            "scope": "Namespaced",
          ]
        ])
      #expect(webhook[path: "clientConfig", "service", "name"] == "pilotfish-webhook")
      let caBundle = webhook[path: "clientConfig", "caBundle"]?.stringValue ?? ""
      #expect(Data(base64Encoded: caBundle) != nil, "caBundle placeholder must be valid base64")
      let objectSelector = webhook[path: "objectSelector", "matchExpressions"]?.arrayValue ?? []
      let optedOut = objectSelector.contains {
        $0["key"] == "sidecar.istio.io/inject"
          && ($0["operator"] == "NotIn" && $0["values"] == ["false"]
            || $0["operator"] == "In" && $0["values"] == ["true"])
      }
      #expect(
        optedOut, "\(webhook["name"]?.stringValue ?? "") must never match sidecar.istio.io/inject=false")
    }
  }

  @Test func imagesBuildTheBinary() throws {
    for name in ["Dockerfile.proxy", "Dockerfile.injector"] {
      let text = try String(contentsOf: Self.deploy.appendingPathComponent("images/\(name)"), encoding: .utf8)
      #expect(text.contains("swift build -c release --product pilotfish"))
      #expect(
        text.contains("FROM ${RUNTIME_IMAGE}") && text.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"))
      #expect(text.contains(#"ENTRYPOINT ["/usr/local/bin/pilotfish"]"#))
      #expect(text.contains("--uid 1337"))
    }
    let proxy = try String(
      contentsOf: Self.deploy.appendingPathComponent("images/Dockerfile.proxy"), encoding: .utf8)
    for package in ["libnftables1", "libmnl0", "iptables", "ca-certificates"] {
      #expect(proxy.contains(package))
    }
    // The agent starts `pilotfish-proxy` from the directory `pilotfish` runs from: both must be in the image.
    #expect(proxy.contains("swift build -c release --product pilotfish-proxy"))
    #expect(proxy.contains("COPY --from=build /out/pilotfish /out/pilotfish-proxy /usr/local/bin/"))
  }

  @Test(
    "gen-webhook-certs.sh makes a serving certificate for the Service",
    .enabled(if: ExternalTools.program("openssl").shouldRun))
  func certificateScript() throws {
    guard ExternalTools.program("openssl").require() else { return }
    let directory = try ExternalTools.temporaryDirectory("pf-certs")
    defer { try? FileManager.default.removeItem(at: directory) }
    let script = Self.deploy.appendingPathComponent("gen-webhook-certs.sh").path
    let made = try ExternalTools.run([
      "bash", script, "--no-kubectl", "--out-dir", directory.path, "--days", "2",
    ])
    #expect(made.status == 0, "\(made.stderr)")
    let verify = try ExternalTools.run(
      [
        "openssl", "verify", "-CAfile", directory.appendingPathComponent("ca.crt").path,
        directory.appendingPathComponent("tls.crt").path,
      ])
    #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    let san = try ExternalTools.run(
      [
        "openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
        directory.appendingPathComponent("tls.crt").path,
      ])
    #expect(san.stdout.contains("DNS:pilotfish-webhook.pilotfish-system.svc"))
  }
}
