internal import Foundation
internal import OrderedCollections
package import PilotfishKit

/// Answers an AdmissionReview (`admission.k8s.io/v1` or `v1beta1`) for a pod: the pure part of the webhook.
///
/// The response echoes the request's apiVersion and kind and carries `response.uid = request.uid`. An
/// injected pod gives `allowed: true` with a base64 JSON Patch from the pod as sent (without
/// `metadata.managedFields`) to the mutated pod; a skipped pod gives `allowed: true` without a patch; a
/// review that cannot be read or a pod that cannot be injected gives `allowed: false` with the reason in
/// `response.status.message`. It never throws: every failure is an answer the API server can show.
package struct AdmissionReviewer: Sendable {
  package static let supportedAPIVersions: Set<String> = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]

  package var settings: InjectorSettings

  package init(settings: InjectorSettings) {
    self.settings = settings
  }

  /// The decision for one review, before it is written as JSON.
  package enum Decision: Sendable, Equatable {
    case patch(JSONPatch)
    case allow(reason: String)
    case deny(message: String)
  }

  /// The AdmissionReview answering `body`; `path` is the request path (its tail adds proxy environment).
  package func review(body: [UInt8], path: String) -> (response: JSONValue, decision: Decision) {
    let review: JSONValue
    do {
      // JSON only (the API server sends JSON): a YAML parser would expand aliases ("billion laughs").
      review = try JSONValue.parseJSON(body)
    } catch {
      let decision = Decision.deny(message: "could not decode the AdmissionReview: \(error)")
      return (Self.response(apiVersion: "admission.k8s.io/v1", uid: "", decision: decision), decision)
    }
    let apiVersion = review["apiVersion"]?.stringValue ?? ""
    let uid = review[path: "request", "uid"]?.stringValue ?? ""
    let decision = decide(review, path: path)
    let echoed = Self.supportedAPIVersions.contains(apiVersion) ? apiVersion : "admission.k8s.io/v1"
    return (Self.response(apiVersion: echoed, uid: uid, decision: decision), decision)
  }

  private func decide(_ review: JSONValue, path: String) -> Decision {
    guard case .object = review else {
      return .deny(message: "could not decode the AdmissionReview: the body is not a JSON object")
    }
    let apiVersion = review["apiVersion"]?.stringValue ?? "<none>"
    guard Self.supportedAPIVersions.contains(apiVersion) else {
      return .deny(
        message:
          "unsupported AdmissionReview apiVersion \"\(apiVersion)\": use admission.k8s.io/v1 or v1beta1")
    }
    guard review["kind"]?.stringValue == "AdmissionReview" else {
      return .deny(
        message: "kind is \"\(review["kind"]?.stringValue ?? "<none>")\", expected \"AdmissionReview\"")
    }
    guard let request = review["request"], case .object = request else {
      return .deny(message: "the AdmissionReview has no request")
    }
    guard var pod = request["object"], case .object = pod else {
      return .deny(message: "request.object is missing or not an object")
    }
    if let kind = pod["kind"]?.stringValue, kind != "Pod" {
      return .deny(message: "request.object is a \(kind), the injector handles only pods")
    }
    if case .object(var metadata)? = pod["metadata"] {
      metadata.removeValue(forKey: "managedFields")
      pod["metadata"] = .object(metadata)
    }
    let namespace =
      pod[path: "metadata", "namespace"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
      ?? request["namespace"]?.stringValue ?? ""
    let owner = PodOwner(pod: pod)
    var context = InjectionContext(
      namespace: namespace, namespaceLabels: [:],
      settings: settings.applying(pathEnvironment: InjectPathParameters.environment(fromPath: path)))
    context.ownerAPIVersion = owner.apiVersion
    context.ownerKind = owner.kind
    context.ownerName = owner.name

    let subject = "pod \(namespace)/\(PodOwner.displayName(of: pod))"
    do {
      switch try PodInjector.inject(pod, context: context) {
      case .skipped(let reason):
        return .allow(reason: "\(subject): \(reason)")
      case .injected(let mutated):
        return .patch(JSONPatch.diff(from: pod, to: mutated))
      }
    } catch {
      return .deny(message: "\(subject): \(error)")
    }
  }

  /// `{"apiVersion", "kind": "AdmissionReview", "response": {...}}` for a decision.
  package static func response(apiVersion: String, uid: String, decision: Decision) -> JSONValue {
    var response: OrderedDictionary<String, JSONValue> = ["uid": .string(uid)]
    switch decision {
    case .patch(let patch):
      response["allowed"] = true
      if !patch.isEmpty {
        response["patchType"] = "JSONPatch"
        response["patch"] = .string(Data(patch.jsonText.utf8).base64EncodedString())
      }
    case .allow:
      response["allowed"] = true
    case .deny(let message):
      response["allowed"] = false
      response["status"] = ["message": .string(message)]
    }
    return ["apiVersion": .string(apiVersion), "kind": "AdmissionReview", "response": .object(response)]
  }
}

extension PodOwner {
  /// The pod's name for messages: its name, else `<generateName>***`.
  package static func displayName(of pod: JSONValue) -> String {
    if let name = pod[path: "metadata", "name"]?.stringValue, !name.isEmpty { return name }
    return (pod[path: "metadata", "generateName"]?.stringValue ?? "") + "***"
  }
}
