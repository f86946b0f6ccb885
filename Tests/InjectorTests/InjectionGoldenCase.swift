import Foundation
import PilotfishKit

@testable import Injector

/// The golden cases of pod injection: an input under `Golden/Pods/<name>.in.yaml`, the expected result
/// under `Golden/Pods/<name>.golden.yaml`, and the context each is injected in.
///
/// A Deployment (or other workload) input is injected through its pod template, with the workload as owner,
/// as `pilotfish inject` does; a Pod is injected as the webhook sees it.
struct InjectionGoldenCase: Sendable, CustomStringConvertible {
  var name: String
  var namespaceLabels: [String: String] = [:]
  var configure: @Sendable (inout InjectorSettings) -> Void = { _ in }

  var description: String { name }

  static let all: [InjectionGoldenCase] = [
    InjectionGoldenCase(name: "deployment-plain"),
    InjectionGoldenCase(name: "pod-probes"),
    InjectionGoldenCase(name: "pod-traffic-annotations") {
      $0.proxyMetadata = ["ISTIO_META_NETWORK": "net-east"]
    },
    InjectionGoldenCase(name: "pod-native-sidecar") {
      $0.nativeSidecars = .auto
      $0.kubeletMinorVersion = 33
    },
    InjectionGoldenCase(name: "pod-hold-application"),
    InjectionGoldenCase(name: "pod-prometheus"),
    InjectionGoldenCase(name: "pod-prometheus-targets"),
    InjectionGoldenCase(name: "pod-prometheus-no-merge"),
    InjectionGoldenCase(name: "pod-interception-none"),
    InjectionGoldenCase(name: "pod-native-interception-none"),
    InjectionGoldenCase(name: "pod-cni") {
      $0.cniMode = true
      $0.nativeNftables = true
      $0.revision = "canary"
      $0.caAddress = "istiod-canary.istio-system.svc:15012"
    },
    InjectionGoldenCase(name: "skip-host-network"),
    InjectionGoldenCase(name: "skip-system-namespace"),
    InjectionGoldenCase(name: "skip-label-false"),
    InjectionGoldenCase(name: "skip-namespace-disabled", namespaceLabels: ["istio-injection": "disabled"]),
    InjectionGoldenCase(name: "skip-other-revision"),
  ]

  init(
    name: String, namespaceLabels: [String: String] = [:],
    configure: @escaping @Sendable (inout InjectorSettings) -> Void = { _ in }
  ) {
    self.name = name
    self.namespaceLabels = namespaceLabels
    self.configure = configure
  }

  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden").appendingPathComponent("Pods")

  var inputURL: URL { Self.directory.appendingPathComponent("\(name).in.yaml") }
  var goldenURL: URL { Self.directory.appendingPathComponent("\(name).golden.yaml") }

  func input() throws -> JSONValue {
    try JSONValue.parseYAML(String(contentsOf: inputURL, encoding: .utf8))
  }

  var settings: InjectorSettings {
    var settings = InjectorSettings()
    configure(&settings)
    return settings
  }

  /// Where the pod (template) sits in the object, and the context to inject it in.
  func podPath(of object: JSONValue) -> [String] {
    object["kind"]?.stringValue == "Pod" ? [] : ["spec", "template"]
  }

  func context(for object: JSONValue) -> InjectionContext {
    let namespace = object[path: "metadata", "namespace"]?.stringValue ?? "default"
    var context = InjectionContext(namespace: namespace, namespaceLabels: namespaceLabels, settings: settings)
    if object["kind"]?.stringValue != "Pod" {
      context.ownerKind = object["kind"]?.stringValue
      context.ownerName = object[path: "metadata", "name"]?.stringValue
      context.ownerAPIVersion = object["apiVersion"]?.stringValue
    } else if let references = object[path: "metadata", "ownerReferences"]?.arrayValue,
      let controller = references.first(where: { $0["controller"]?.boolValue == true }),
      let hash = object[path: "metadata", "labels", "pod-template-hash"]?.stringValue,
      let name = controller["name"]?.stringValue, name.hasSuffix("-" + hash)
    {
      // What the webhook derives for a Deployment's pod.
      context.ownerKind = "Deployment"
      context.ownerName = String(name.dropLast(hash.count + 1))
      context.ownerAPIVersion = controller["apiVersion"]?.stringValue
    }
    return context
  }

  /// Injects the object's pod (template); the outcome applies to the whole object.
  func inject(_ object: JSONValue) throws(InjectionError) -> InjectionOutcome {
    let path = podPath(of: object)
    let pod = path.isEmpty ? object : (object[path: "spec", "template"] ?? .null)
    switch try PodInjector.inject(pod, context: context(for: object)) {
    case .skipped(let reason): return .skipped(reason: reason)
    case .injected(let mutated): return .injected(Self.replacing(object, at: path, with: mutated))
    }
  }

  func uninject(_ object: JSONValue) -> JSONValue {
    let path = podPath(of: object)
    let pod = path.isEmpty ? object : (object[path: "spec", "template"] ?? .null)
    return Self.replacing(object, at: path, with: PodInjector.uninject(pod))
  }

  /// The golden file's text for an outcome: the object as YAML, or a `skipped` document.
  static func text(_ outcome: InjectionOutcome) -> String {
    switch outcome {
    case .injected(let object): return InjectionGoldenYAML.text(object)
    case .skipped(let reason): return InjectionGoldenYAML.text(["skipped": .string(reason)])
    }
  }

  static func replacing(_ object: JSONValue, at path: [String], with value: JSONValue) -> JSONValue {
    guard let key = path.first else { return value }
    var result = object
    result[key] = replacing(object[key] ?? .emptyObject, at: Array(path.dropFirst()), with: value)
    return result
  }
}
